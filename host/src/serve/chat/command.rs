//! The chat command grammar, the same on every platform:
//! `/triage RUNBOOK TARGET [NAME=VALUE…] [answer:STEP=VALUE…]`, `/triage list`, `/triage help`;
//! and back again, the command that repeats a run with one more answer.

use crate::serve::runs::RunRequest;
use serde_json::Value;

/// What the command text asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum Command {
    Help,
    List,
    Run(RunRequest),
}

pub fn parse(text: &str) -> Result<Command, String> {
    let words: Vec<&str> = text.split_whitespace().collect();
    match words.as_slice() {
        [] | ["help"] => return Ok(Command::Help),
        ["list"] => return Ok(Command::List),
        [_] => return Err("give a runbook and a target: `RUNBOOK TARGET [NAME=VALUE…]`".into()),
        _ => {}
    }
    let mut request = RunRequest {
        runbook: words[0].to_string(),
        target: words[1].to_string(),
        ..Default::default()
    };
    for word in &words[2..] {
        let (name, value) = word
            .split_once('=')
            .ok_or_else(|| format!("`{word}`: write inputs as NAME=VALUE"))?;
        match name.strip_prefix("answer:") {
            Some(step) => {
                request.answers.insert(step.to_string(), value.to_string());
            }
            None => {
                request
                    .inputs
                    .insert(name.to_string(), Value::String(value.to_string()));
            }
        }
    }
    Ok(Command::Run(request))
}

pub fn help(command: &str) -> String {
    format!(
        "`{command} RUNBOOK TARGET [NAME=VALUE…] [answer:STEP=VALUE…]` runs a runbook; \
         `{command} list` shows the runbooks and targets."
    )
}

/// The same request with one more answer: what a choice's button (or typed command) runs.
pub fn answered(request: &RunRequest, step: &str, choice: &str) -> RunRequest {
    let mut next = request.clone();
    next.answers.insert(step.to_string(), choice.to_string());
    next
}

/// The slash command that runs `request` again, for typing: inputs as NAME=VALUE, answers as
/// answer:STEP=VALUE.
pub fn text(command: &str, request: &RunRequest) -> String {
    let mut words = vec![
        command.to_string(),
        request.runbook.clone(),
        request.target.clone(),
    ];
    for (name, value) in &request.inputs {
        let value = match value {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        words.push(format!("{name}={value}"));
    }
    for (step, answer) in &request.answers {
        words.push(format!("answer:{step}={answer}"));
    }
    words.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_text_is_runbook_target_inputs_and_answers() {
        assert_eq!(parse("").unwrap(), Command::Help);
        assert_eq!(parse(" list ").unwrap(), Command::List);
        let Command::Run(r) =
            parse("service-unreachable demo vip=10.0.0.1 answer:where=vm").unwrap()
        else {
            panic!("a run")
        };
        assert_eq!(r.runbook, "service-unreachable");
        assert_eq!(r.target, "demo");
        assert_eq!(r.inputs["vip"], "10.0.0.1");
        assert_eq!(r.answers["where"], "vm");
        assert!(parse("rb").unwrap_err().contains("runbook and a target"));
        assert!(parse("rb t novalue").unwrap_err().contains("NAME=VALUE"));
    }

    #[test]
    fn the_typed_answer_repeats_inputs_and_earlier_answers() {
        let Command::Run(request) =
            parse("service-unreachable demo vip=10.0.0.1 answer:a=1").unwrap()
        else {
            panic!("a run")
        };
        let again = answered(&request, "b", "no");
        assert_eq!(
            text("/td", &again),
            "/td service-unreachable demo vip=10.0.0.1 answer:a=1 answer:b=no"
        );
        // What the command line gives back parses to the same request.
        let typed = text("/td", &again);
        let Command::Run(parsed) = parse(typed.trim_start_matches("/td")).unwrap() else {
            panic!("a run")
        };
        assert_eq!(parsed, again);
    }
}
