//! Threshold, abort and stop_when expressions: `[SELECTOR] METRIC OP VALUE [during PHASE]`
//! and `... for DURATION`.
//!
//! API CONTRACT: `parse_threshold`, `parse_abort`, `parse_stop_when` and the types below.
//! Values are normalized: latency metrics and `lag_p99` in milliseconds, `errors` as a fraction
//! (0.5% → 0.005), `rate` per second, `count` and `dropped` as counts.

use std::time::Duration;

#[derive(Debug, Clone, PartialEq)]
pub enum Selector {
    All,
    Request(String),
    Journey(String),
    Client(String),
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Metric {
    P50,
    P90,
    P95,
    P99,
    P999,
    Max,
    Mean,
    Errors,
    Rate,
    Count,
    Dropped,
    LagP99,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Threshold {
    pub source: String,
    pub selector: Selector,
    pub metric: Metric,
    pub op: Op,
    pub value: f64,
    pub phase: Option<String>,
}

/// An abort rule: the condition is a *failure* condition (`errors > 30%`) that must hold
/// continuously `for` the given duration.
#[derive(Debug, Clone, PartialEq)]
pub struct AbortRule {
    pub cond: Threshold,
    pub for_: Duration,
}

/// An expression error at byte `offset` of the expression.
#[derive(Debug, Clone, PartialEq)]
pub struct ExprError {
    pub offset: usize,
    pub message: String,
}

pub fn parse_threshold(_src: &str) -> Result<Threshold, ExprError> {
    unimplemented!()
}

pub fn parse_abort(_src: &str) -> Result<AbortRule, ExprError> {
    unimplemented!()
}

pub fn parse_stop_when(_src: &str) -> Result<Threshold, ExprError> {
    unimplemented!()
}

impl Op {
    pub fn holds(self, observed: f64, limit: f64) -> bool {
        match self {
            Op::Lt => observed < limit,
            Op::Le => observed <= limit,
            Op::Gt => observed > limit,
            Op::Ge => observed >= limit,
        }
    }
}
