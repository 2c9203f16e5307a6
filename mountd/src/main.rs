//! The `fossa` command: CLI, mount daemon and control socket (docs/cli.md is normative).
//!
//! `anyhow` is used here and in `cli/` only; the FUSE adapter maps typed `FsError`s.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]
#![cfg_attr(test, allow(clippy::unwrap_used))]

mod cli;
mod config;
mod control;
mod fuse;
mod logging;
mod mountinfo;
mod recovery;
mod sync;
mod timefmt;
mod unlock;
mod volume;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// fossa: a distributed encrypted filesystem.
#[derive(Debug, Parser)]
#[command(name = "fossa", version)]
pub(crate) struct Cli {
    /// Keep config and data under DIR (DIR/config, DIR/data) instead of the XDG directories.
    #[arg(long, global = true, env = "FOSSA_HOME", value_name = "DIR")]
    pub(crate) home: Option<PathBuf>,
    /// Unlock with a key file (64 hex digits) instead of a passphrase.
    #[arg(long, global = true, value_name = "FILE")]
    pub(crate) key_file: Option<PathBuf>,
    /// More logging (-v debug, -vv trace); RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub(crate) verbose: u8,
    /// What to do.
    #[command(subcommand)]
    pub(crate) cmd: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Create a new volume and print its id.
    Init {
        /// This device's name (default: the host name and the first group of the device id).
        #[arg(long)]
        name: Option<String>,
    },
    /// Mount the volume at DIR (creating the volume first if there is none).
    Mount {
        #[command(flatten)]
        args: MountArgs,
        /// Mount even if DIR is not empty (its contents stay hidden until the unmount).
        #[arg(long)]
        nonempty: bool,
    },
    /// Unmount DIR; the daemon syncs and exits.
    Umount {
        /// The mount point.
        dir: PathBuf,
    },
    /// Show the volume's status, or the sync state of PATH in the mount.
    Status {
        /// A file or directory in the mounted volume.
        path: Option<PathBuf>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        /// Show the sync's progress until every block is here.
        #[arg(long, conflicts_with_all = ["json", "path"])]
        follow: bool,
    },
    /// Print a one-time invitation code for another device (the volume must be mounted).
    Invite {
        /// How long the code stays valid (s, m, h or d).
        #[arg(long, default_value = "1h")]
        expires: String,
        /// Address the joiner should call (default: where the daemon listens); repeatable.
        #[arg(long, value_name = "HOST:PORT")]
        addr: Vec<String>,
        /// Invite a storage peer (`fossa keeper`): it gets no volume secret.
        #[arg(long)]
        keeper: bool,
    },
    /// Show the redundancy level of a directory in the mount, or set it to N (1–16).
    Redundancy {
        /// A directory in the mounted volume.
        dir: PathBuf,
        /// The level to set.
        #[arg(value_parser = clap::value_parser!(u8).range(1..=16))]
        level: Option<u8>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Run a storage peer: join with a `FOSSAK2-` code, or resume; serve until SIGINT/SIGTERM.
    Keeper(KeeperArgs),
    /// Run a swarm node (`fossa node CODE` joins first; `fossa node init` prints the node id).
    #[command(args_conflicts_with_subcommands = true)]
    Node {
        /// A `FOSSAS1-…` join code (first run only).
        code: Option<String>,
        /// UDP address to listen on (default 0.0.0.0:22100; saved).
        #[arg(long, value_name = "IP:PORT")]
        listen: Option<std::net::SocketAddr>,
        /// An address to bootstrap from besides the saved ones; repeatable.
        #[arg(long, value_name = "HOST:PORT")]
        bootstrap: Vec<String>,
        /// init.
        #[command(subcommand)]
        cmd: Option<NodeCmd>,
    },
    /// Create a swarm, or invite a node to it.
    Swarm {
        /// create | invite.
        #[command(subcommand)]
        cmd: SwarmCmd,
    },
    /// Join a volume with an invitation code and mount it at DIR.
    Join(JoinArgs),
    /// List the volume's devices, or remove one.
    #[command(args_conflicts_with_subcommands = true)]
    Devices {
        /// Print JSON.
        #[arg(long)]
        json: bool,
        /// remove.
        #[command(subcommand)]
        cmd: Option<DevicesCmd>,
    },
    /// Verify every reachable block and the metadata (volume must not be mounted).
    Fsck {
        /// Rebuild a damaged block index.
        #[arg(long)]
        repair: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Make everything written to the mounted volume durable (data and metadata fsynced).
    Sync,
    /// Delete blocks no longer reachable and compact data files.
    Gc {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Retain the current tree as a snapshot; or list or remove snapshots.
    #[command(args_conflicts_with_subcommands = true)]
    Snapshot {
        /// Snapshot name (default: the UTC time, YYYY-MM-DDTHH-MM-SSZ).
        name: Option<String>,
        /// list or rm.
        #[command(subcommand)]
        cmd: Option<SnapshotCmd>,
    },
}

/// Arguments of `fossa mount`.
#[derive(Clone, Debug, clap::Args)]
pub(crate) struct MountArgs {
    /// The mount point (an existing directory).
    pub(crate) dir: PathBuf,
    /// Return once mounted, serving from a background process logging to DATA/fossa.log.
    #[arg(long)]
    pub(crate) daemon: bool,
    /// Mount read-only.
    #[arg(long)]
    pub(crate) read_only: bool,
    /// Let other users access the mount.
    #[arg(long)]
    pub(crate) allow_other: bool,
    /// Keep written data in the kernel's page cache (FUSE write-through) instead of direct
    /// I/O for files open for writing: faster repeated reads through such handles, slower
    /// and costlier writes.
    #[arg(long)]
    pub(crate) cached_writes: bool,
    #[command(flatten)]
    pub(crate) net: NetArgs,
    /// This device's name if the volume is created now (default: the host name and the first group of the device id).
    #[arg(long)]
    pub(crate) name: Option<String>,
}

/// Where the sync node listens and whom it calls.
#[derive(Clone, Debug, Default, clap::Args)]
pub(crate) struct NetArgs {
    /// UDP address to accept peers on (default 0.0.0.0:22000, or a free port if taken).
    #[arg(long, value_name = "IP:PORT")]
    pub(crate) listen: Option<std::net::SocketAddr>,
    /// A peer to call besides the members' known addresses; repeatable.
    #[arg(long, value_name = "HOST:PORT")]
    pub(crate) peer: Vec<String>,
    /// Limit on block data sent, bytes per second (500K, 10M; 0: unlimited).
    #[arg(long, value_name = "RATE", default_value = "0")]
    pub(crate) max_send: String,
    /// Limit on block data received, bytes per second (500K, 10M; 0: unlimited).
    #[arg(long, value_name = "RATE", default_value = "0")]
    pub(crate) max_recv: String,
    /// LAN discovery: the broadcast address to announce on, or `off`.
    #[arg(
        long,
        value_name = "IPv4|off",
        env = "FOSSA_DISCOVERY",
        default_value = "255.255.255.255"
    )]
    pub(crate) discovery: String,
}

/// Arguments of `fossa join`.
#[derive(Clone, Debug, clap::Args)]
pub(crate) struct JoinArgs {
    /// The `FOSSA2-…` code printed by `fossa invite`.
    pub(crate) code: String,
    /// The mount point (an existing directory).
    pub(crate) dir: PathBuf,
    /// This device's name (default: the host name and the first group of the device id).
    #[arg(long)]
    pub(crate) name: Option<String>,
    #[command(flatten)]
    pub(crate) net: NetArgs,
}

/// Arguments of `fossa keeper`.
#[derive(Clone, Debug, clap::Args)]
pub(crate) struct KeeperArgs {
    /// The `FOSSAK2-…` code printed by `fossa invite --keeper` (first run only).
    pub(crate) code: Option<String>,
    /// Most bytes to hold (50G, 500M); required when joining, kept afterwards.
    #[arg(long, value_name = "SIZE")]
    pub(crate) quota: Option<String>,
    /// This keeper's name (default: HOSTNAME-keeper).
    #[arg(long)]
    pub(crate) name: Option<String>,
    #[command(flatten)]
    pub(crate) net: NetArgs,
}

/// `fossa node init`.
#[derive(Debug, Subcommand)]
pub(crate) enum NodeCmd {
    /// Make the node key (if missing) and print the node id.
    Init,
}

/// `fossa swarm create|invite`.
#[derive(Debug, Subcommand)]
pub(crate) enum SwarmCmd {
    /// Create a swarm with this node as its founder (or an open one).
    Create {
        /// Anyone who knows the swarm id may join (no tickets).
        #[arg(long)]
        open: bool,
        /// Days the founder's own ticket is valid.
        #[arg(long, default_value_t = 3650)]
        days: u64,
    },
    /// Print a join code for NODE_ID (an open swarm's code names no node).
    Invite {
        /// The joiner's node id (`fossa node init` prints it).
        node: Option<String>,
        /// The new node may admit others.
        #[arg(long)]
        admit: bool,
        /// Days the ticket is valid.
        #[arg(long, default_value_t = 90)]
        days: u64,
        /// Bootstrap address to put in the code (default: this node's listen address); repeatable.
        #[arg(long, value_name = "HOST:PORT")]
        addr: Vec<String>,
    },
}

/// `fossa devices remove`.
#[derive(Debug, Subcommand)]
pub(crate) enum DevicesCmd {
    /// Revoke a device for good.
    Remove {
        /// Its id (display form, or a unique prefix).
        id: String,
    },
}

/// `fossa snapshot list|rm`.
#[derive(Debug, Subcommand)]
pub(crate) enum SnapshotCmd {
    /// List snapshots (name, time).
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Forget a snapshot; its blocks go at the next gc.
    Rm {
        /// Snapshot name.
        name: String,
    },
}

fn main() -> ExitCode {
    let args = match Cli::try_parse() {
        Ok(args) => args,
        Err(e) => return argument_error(&e),
    };
    logging::init(args.verbose);
    // fsck distinguishes "problems found" (1) from "could not check" (2).
    let error_code = if matches!(args.cmd, Command::Fsck { .. }) {
        2
    } else {
        1
    };
    match cli::run(args) {
        Ok(code) => code,
        Err(e) => {
            logging::stderr_line(&format!("fossa: error: {e:#}"));
            ExitCode::from(error_code)
        }
    }
}

/// `--help` and `--version` print to stdout and exit 0; a bad command line is an error like any
/// other (docs/cli.md): `fossa: error: …` on stderr, the usage after it, exit 1.
fn argument_error(e: &clap::Error) -> ExitCode {
    if !e.use_stderr() {
        logging::stdout_line(e.to_string().trim_end());
        return ExitCode::SUCCESS;
    }
    let text = e.to_string();
    let text = text.strip_prefix("error: ").unwrap_or(&text);
    logging::stderr_line(&format!("fossa: error: {}", text.trim_end()));
    ExitCode::from(1)
}
