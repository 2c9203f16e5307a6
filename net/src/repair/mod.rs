//! Placement, audit and repair as pure logic (docs/redundancy.md, "Planner"): a
//! [`HolderTable`] of who holds what, and [`plan`], which turns the table, the nodes of this
//! round and a [`Policy`] into [`Action`]s. No I/O: the daemon executes the actions with
//! [`crate::Node`] (`fetch_blocks` + `put_blocks`, `drop_blocks`, `audit`) and feeds the
//! results back into the table; simulations do the same against an in-memory swarm.
//!
//! Guarantees of a plan: copies go only to connected, trusted nodes with room, never to a node
//! already listed as a holder; a drop is planned only when every counted copy is live and more
//! live copies than the level remain after it, so executing a plan never takes a block below
//! its level (and never removes its last copy); a pinned copy is never dropped.
mod plan;
mod table;

pub use plan::{Action, MAX_AUDIT_IDS, NodeView, Plan, Policy, plan};
pub use table::{Evidence, HolderTable};
