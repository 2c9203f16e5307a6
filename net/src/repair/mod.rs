//! Placement, audit and repair as pure logic (docs/redundancy.md, "Planner"): a
//! [`HolderTable`] of who holds what, and [`plan`], which turns the table, the nodes of this
//! round and a [`Policy`] into [`Action`]s. The table and planner do no I/O; [`execute`]
//! (`run.rs`, the only async part) carries a plan out with [`crate::Node`] (`fetch_blocks` +
//! `put_blocks`, `drop_blocks`, `audit`) and feeds the results back into the table;
//! simulations do the same against an in-memory swarm.
//!
//! Guarantees of a plan: copies go only to connected, trusted nodes with room, never to a node
//! already listed as a holder; a drop is planned only when every counted copy is live and more
//! live copies than the level remain after it, so executing a plan never takes a block below
//! its level (and never removes its last copy); a pinned copy is never dropped.
mod plan;
mod run;
mod table;

pub use plan::{Action, MAX_AUDIT_IDS, NodeView, Plan, Policy, plan};
pub use run::{RunReport, audit_deadline, execute};
pub use table::{Evidence, HolderTable};
