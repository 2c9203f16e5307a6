//! Swarm nodes as real `fossa node` processes on 127.0.0.x (docs/swarm.md, protocol.md "The
//! swarm DHT"): nodes that only know one bootstrap address find each other through the DHT,
//! a node of another swarm is refused at admission, and SIGTERM stops a node cleanly.

use std::time::Duration;

use anyhow::{Result, ensure};
use fossa_tests::{SwarmNode, wait_until};

/// Nodes started (the founder included); the full-size run is bench/swarm.sh's.
const NODES: usize = 20;
/// How long the swarm may take to settle on loopback.
const SETTLE: Duration = Duration::from_secs(90);

fn addr(i: usize, port: u16) -> String {
    format!("127.0.{}.{}:{port}", 10 + i / 200, 1 + i % 200)
}

#[test]
fn nodes_that_know_one_address_find_each_other_and_strangers_are_refused() -> Result<()> {
    let port = 23110;
    let mut founder = SwarmNode::new(&addr(0, port))?;
    founder.create_swarm(false)?;
    founder.start(None, &[])?;
    let mut nodes = Vec::new();
    for i in 1..NODES {
        let mut n = SwarmNode::new(&addr(i, port))?;
        let code = founder.invite(Some(&n.id()?), false)?;
        n.start(Some(&code), &[])?;
        nodes.push(n);
    }
    // Every node bootstrapped from the founder alone; the DHT must introduce the rest.
    // With K = 20 > NODES - 1, a settled table holds every other node; ask for most of them.
    let want = (NODES - 1) * 3 / 4;
    for n in nodes.iter().chain(std::iter::once(&founder)) {
        wait_until(
            SETTLE,
            &format!("{} to know {want} nodes", n.listen),
            || Ok(n.stat("contacts")? >= want as u64),
        )?;
    }
    let contacts: Vec<u64> = nodes
        .iter()
        .map(|n| n.stat("contacts"))
        .collect::<Result<_>>()?;
    ensure!(
        contacts.iter().all(|&c| c <= (NODES - 1) as u64),
        "a table holds more nodes than exist: {contacts:?}"
    );

    // A node of another swarm that bootstraps from the founder is refused at admission, and
    // learns nobody.
    let mut stranger = SwarmNode::new(&addr(NODES, port))?;
    stranger.create_swarm(false)?;
    stranger.start(None, &[&founder.listen])?;
    wait_until(SETTLE, "the founder to refuse the stranger", || {
        Ok(founder.stat("refused")? >= 1)
    })?;
    ensure!(
        stranger.stat("contacts")? == 0,
        "the stranger got into a table: {}",
        stranger.status()?
    );
    ensure!(
        nodes
            .iter()
            .all(|n| n.stat("contacts").is_ok_and(|c| c <= (NODES - 1) as u64)),
        "the stranger entered a member's table"
    );

    // SIGTERM ends a node within a few seconds, with success.
    let st = nodes[0].terminate(Duration::from_secs(10))?;
    ensure!(
        st.success(),
        "fossa node exited with {st} after SIGTERM: {}",
        nodes[0].log()
    );
    ensure!(founder.alive()?, "the founder died: {}", founder.log());
    Ok(())
}
