//! Questions, one at a time: when a run leaves an ask step unanswered, its result offers
//! that question, and each answer is a new run with the answers so far, so the person is
//! walked through the runbook.

use crate::report::{Report, Skip};
use crate::runbook::Runbook;

/// An ask step the run left unanswered: the question the result offers next.
#[derive(Debug, PartialEq, Eq)]
pub struct Question {
    pub step: String,
    pub prompt: String,
    pub choices: Vec<String>,
}

/// The first ask step (in the report's order) skipped for want of an answer.
pub fn next(runbook: &Runbook, report: &Report) -> Option<Question> {
    report
        .steps
        .iter()
        .filter(|s| s.skip == Some(Skip::Unanswered))
        .find_map(|s| {
            let step = runbook.steps.iter().find(|st| st.id.as_str() == s.id)?;
            let ask = step.ask.as_ref()?;
            Some(Question {
                step: s.id.clone(),
                prompt: ask.prompt.clone(),
                choices: ask.choices.clone(),
            })
        })
}

/// The report as a chat shows it: an unanswered step's reason tells a person at a
/// terminal to pass `--answer`; in a chat the question comes with the result instead.
pub fn for_chat(report: &Report) -> Report {
    let mut report = report.clone();
    for step in &mut report.steps {
        if step.skip == Some(Skip::Unanswered) {
            step.reason = Some("not answered yet: see the question below".into());
        }
    }
    report
}

#[cfg(test)]
pub mod tests {
    use super::*;
    use crate::report::{RunbookInfo, StepReport, StepStatus};
    use std::time::Duration;

    /// A report whose ask step `console` nobody answered, and the question it leaves.
    pub fn report_with_an_open_question() -> (Report, Question) {
        let step = StepReport {
            id: "console".into(),
            title: "How the VM was created".into(),
            status: StepStatus::Skipped,
            severity: None,
            reason: Some("not answered (pass --answer console=<yes|no>)".into()),
            skip: Some(Skip::Unanswered),
            duration_ms: 0,
            plugin: None,
            capabilities: vec![],
            logs: vec![],
            output: None,
        };
        let report = Report::new(
            RunbookInfo {
                id: "rb".into(),
                title: "A runbook".into(),
                source: None,
                guide: None,
                origin: "built-in".into(),
            },
            "vm".into(),
            Default::default(),
            vec![step],
            vec![],
            std::time::SystemTime::UNIX_EPOCH,
            Duration::ZERO,
        );
        let question = Question {
            step: "console".into(),
            prompt: "Was the VM created in the Cloud Console?".into(),
            choices: vec!["yes".into(), "no".into()],
        };
        (report, question)
    }

    fn runbook() -> Runbook {
        serde_yaml::from_str(
            "apiVersion: triage/v1\nid: rb\ntitle: A runbook\nsteps:\n\
             \x20 - id: console\n    title: How the VM was created\n\
             \x20   ask: {prompt: \"Was the VM created in the Cloud Console?\", choices: [yes, no]}\n",
        )
        .unwrap()
    }

    #[test]
    fn the_next_question_is_the_step_skipped_as_unanswered() {
        let (report, question) = report_with_an_open_question();
        assert_eq!(next(&runbook(), &report), Some(question));
        // The reason's text does not matter, the typed skip does: another skip of the same
        // step (a false `when`, a blocked need) asks nothing.
        let mut other = report.clone();
        other.steps[0].skip = None;
        other.steps[0].reason = Some("not answered".into());
        assert_eq!(next(&runbook(), &other), None);
        // In a chat, the step says the question follows rather than naming a CLI flag.
        let shown = for_chat(&report);
        assert!(
            !shown.steps[0]
                .reason
                .as_deref()
                .unwrap()
                .contains("--answer")
        );
    }
}
