//! The pure core: from two snapshots, the stored links and the baseline, decide what each side
//! must receive. No async, no HTTP, no SQL; time, when needed, is a parameter.

pub mod data;
pub mod decide;
pub mod diff;
pub mod explain;
pub mod import;
pub mod normalize;
pub mod plan;
pub mod policy;
pub mod retry;
pub mod safety;
pub mod saved;
pub mod settle;

pub use diff::{Snapshot, plan_pass, telus_value};
pub use plan::{
    Action, Agreed, AttrChange, Baseline, DataProblem, KnownRefusal, Plan, PlannedAction, Problem,
    ProblemKind, Rule, UserRef,
};
pub use safety::{HoldContext, hold_reasons};
pub use settle::{Settlement, Unfinished, settle};

#[cfg(test)]
mod tests;
