//! One line of `zc doctor`: what was checked, what was found, and the fix.

use serde::Serialize;

/// How a finding bears on running zc.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// As it should be.
    Ok,
    /// Works, but costs latency or a feature: the fix says what to change.
    Warn,
    /// Something a backend or the interface needs is not there.
    Missing,
    /// A fact to know; nothing to fix.
    Info,
}

impl Status {
    /// The fixed-width word printed before each finding.
    pub fn label(self) -> &'static str {
        match self {
            Status::Ok => "ok     ",
            Status::Warn => "WARN   ",
            Status::Missing => "MISSING",
            Status::Info => "info   ",
        }
    }
}

/// A checked item and its verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// Short name of what was checked (`link`, `native XDP`, `nohz_full`...).
    pub check: &'static str,
    /// The verdict.
    pub status: Status,
    /// What was found.
    pub detail: String,
    /// The command or change that fixes a warning or a missing item.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

impl Finding {
    /// A finding without a fix.
    pub fn new(check: &'static str, status: Status, detail: impl Into<String>) -> Self {
        Self {
            check,
            status,
            detail: detail.into(),
            fix: None,
        }
    }

    /// A finding with the fix that resolves it.
    pub fn fix(
        check: &'static str,
        status: Status,
        detail: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        Self {
            check,
            status,
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }
}

/// Prints a titled section of findings, each fix on the line below.
pub fn print_section(title: &str, findings: &[Finding]) {
    println!("{title}");
    for f in findings {
        println!("  {} {:<18} {}", f.status.label(), f.check, f.detail);
        if let Some(fix) = &f.fix {
            println!("          {:<18} fix: {fix}", "");
        }
    }
}
