//! Misbehaves on purpose, one way per action, so the sandbox tests can check that each
//! misbehaviour fails only its own step.

// Natively (cargo test --workspace) nothing is exported, so nothing here is used.
#![cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]

use triage_sdk::{Action, Facts, JsonSchema, Manifest, Params, Probe, ProbeError, register_probe};

#[derive(serde::Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct NoParams {}

#[derive(serde::Serialize, JsonSchema)]
struct Nothing {}

#[derive(serde::Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct UrlParams {
    url: String,
}

#[derive(serde::Serialize, JsonSchema)]
struct Answered {
    status: u16,
}

#[derive(serde::Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct MethodParams {
    url: String,
    method: String,
}

#[derive(serde::Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct WhichParams {
    which: String,
}

/// Command lines a plugin can declare for itself; only the operator's policy stands
/// between them and the host. The first is one the built-in policy allows.
const COMMAND_LINES: &[(&str, &[&str])] = &[
    (
        "kubectl-pods",
        &["kubectl", "get", "pods", "-n", "default", "-o", "json"],
    ),
    ("ps-environment", &["ps", "eww"]),
    (
        "kubectl-secrets",
        &["kubectl", "get", "secrets", "-A", "-o", "yaml"],
    ),
    (
        "kubectl-kubeconfig",
        &[
            "kubectl",
            "get",
            "pods",
            "-n",
            "default",
            "-o",
            "json",
            "--kubeconfig=/tmp/kc",
        ],
    ),
    (
        "kubectl-as",
        &[
            "kubectl",
            "get",
            "pods",
            "-n",
            "default",
            "-o",
            "json",
            "--as",
            "system:admin",
        ],
    ),
    (
        "kubectl-yaml",
        &["kubectl", "get", "pods", "-n", "default", "-o", "yaml"],
    ),
    (
        "gcloud-flags-file",
        &[
            "gcloud",
            "projects",
            "get-iam-policy",
            "--format=json",
            "--flags-file=/tmp/f",
            "--",
            "p",
        ],
    ),
    (
        "gcloud-impersonate",
        &[
            "gcloud",
            "projects",
            "get-iam-policy",
            "--format=json",
            "--impersonate-service-account=sa@p.iam.gserviceaccount.com",
            "--",
            "p",
        ],
    ),
    (
        "gcloud-configuration",
        &[
            "gcloud",
            "services",
            "list",
            "--enabled",
            "--format=json",
            "--configuration=other",
        ],
    ),
];

/// A second request hidden in a header value: sent as is, it reaches the server after the
/// first, past a policy that allowed only the first request's URL.
const SMUGGLED: &str =
    "a\r\n\r\nPOST /quitquitquit HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\r\n";

struct Hostile;

impl Probe for Hostile {
    fn describe() -> Manifest {
        Manifest::new(
            "hostile",
            env!("CARGO_PKG_VERSION"),
            "Misbehaves on purpose",
        )
        .action(Action::new::<NoParams, Nothing>("spin", "Loops forever"))
        .action(Action::new::<NoParams, Nothing>(
            "allocate",
            "Allocates and touches 1 GiB",
        ))
        .action(Action::new::<NoParams, Nothing>(
            "trap",
            "Panics, which traps",
        ))
        .action(Action::new::<NoParams, Nothing>(
            "huge-output",
            "Returns 20 MiB of facts",
        ))
        // Declared, but the default policy does not allow it.
        .action(
            Action::new::<NoParams, Nothing>("policy-denied", "Runs rm -rf").exec(&[
                "rm",
                "-rf",
                "/tmp/triage-hostile",
            ]),
        )
        // Not declared at all.
        .action(Action::new::<NoParams, Nothing>(
            "undeclared-read",
            "Reads /etc/shadow",
        ))
        .action(Action::new::<NoParams, Nothing>(
            "undeclared-http",
            "Fetches an outside URL",
        ))
        .action(
            Action::new::<NoParams, Nothing>(
                "slow-exec",
                "Waits on a command that sleeps for a minute",
            )
            .exec(&["sleep", "60"]),
        )
        .action(Action::new::<NoParams, Nothing>(
            "flood-log",
            "Makes 2,000 denied reads of a 1 MiB path, to fill the host's capability log",
        ))
        .action(
            Action::new::<UrlParams, Answered>("http-get", "GET of a URL, as given").http("{url}"),
        )
        .action(
            Action::new::<UrlParams, Answered>(
                "http-smuggle-header",
                "GET of a URL with a second request in a header value",
            )
            .http("{url}"),
        )
        .action(
            Action::new::<UrlParams, Answered>(
                "http-smuggle-method",
                "A method that carries a second request",
            )
            .http("{url}"),
        )
        .action(
            Action::new::<UrlParams, Answered>(
                "http-bad-header-name",
                "A header name with a colon and a line break in it",
            )
            .http("{url}"),
        )
        .action(
            Action::new::<MethodParams, Answered>(
                "http-any",
                "Any method to any URL, under a declared `**` (which means GET and HEAD)",
            )
            .http("**"),
        )
        .action(
            Action::new::<UrlParams, Answered>("http-post", "POST to any URL, declared as such")
                .http("POST **"),
        )
        .action(COMMAND_LINES.iter().fold(
            Action::new::<WhichParams, Nothing>(
                "command-line",
                "Runs one of the command lines it declares (see COMMAND_LINES)",
            ),
            |action, (_, argv)| action.exec(argv),
        ))
        .action(Action::new::<NoParams, Nothing>("ok", "Behaves"))
    }

    fn run(action: &str, params: Params) -> Result<Facts, ProbeError> {
        if action == "http-any" {
            let p: MethodParams = params.parse()?;
            let response = triage_sdk::http(&p.method, &p.url, &[])?;
            return Facts::new(&Answered {
                status: response.status,
            });
        }
        if action == "command-line" {
            let p: WhichParams = params.parse()?;
            let Some((_, argv)) = COMMAND_LINES.iter().find(|(name, _)| *name == p.which) else {
                return Err(ProbeError::invalid_params(format!(
                    "no command line {}",
                    p.which
                )));
            };
            triage_sdk::exec(argv)?;
            return Facts::new(&Nothing {});
        }
        if action.starts_with("http-") {
            let p: UrlParams = params.parse()?;
            let response = match action {
                "http-get" => triage_sdk::http("GET", &p.url, &[])?,
                "http-post" => triage_sdk::http("POST", &p.url, &[])?,
                "http-smuggle-header" => triage_sdk::http("GET", &p.url, &[("X-A", SMUGGLED)])?,
                "http-smuggle-method" => triage_sdk::http(
                    "POST /quitquitquit HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\nGET",
                    &p.url,
                    &[],
                )?,
                "http-bad-header-name" => {
                    triage_sdk::http("GET", &p.url, &[("X-A: b\r\nX-B", "c")])?
                }
                other => return Err(ProbeError::unknown_action(other)),
            };
            return Facts::new(&Answered {
                status: response.status,
            });
        }
        let _: NoParams = params.parse()?;
        match action {
            "spin" => {
                let mut x: u64 = 0;
                loop {
                    x = std::hint::black_box(x.wrapping_add(1));
                }
            }
            "allocate" => {
                let mut big = vec![0u8; 1 << 30];
                for i in (0..big.len()).step_by(4096) {
                    big[i] = 1;
                }
                Facts::new(&serde_json::json!({ "len": std::hint::black_box(big).len() }))
            }
            "trap" => panic!("deliberate panic"),
            "huge-output" => Facts::new(&"x".repeat(20 << 20)),
            "policy-denied" => {
                triage_sdk::exec(&["rm", "-rf", "/tmp/triage-hostile"])?;
                Facts::new(&Nothing {})
            }
            "undeclared-read" => {
                triage_sdk::read_file("/etc/shadow", 1024)?;
                Facts::new(&Nothing {})
            }
            "undeclared-http" => {
                triage_sdk::http_get("http://example.com/", &[])?;
                Facts::new(&Nothing {})
            }
            "slow-exec" => {
                triage_sdk::exec(&["sleep", "60"])?;
                Facts::new(&Nothing {})
            }
            "flood-log" => {
                let path = format!("/{}", "a".repeat(1 << 20));
                let mut denied = 0;
                for _ in 0..2000 {
                    if triage_sdk::read_file(&path, 1).is_err() {
                        denied += 1;
                    }
                }
                Facts::new(&serde_json::json!({ "denied": denied }))
            }
            "ok" => Facts::new(&serde_json::json!({ "fine": true })),
            other => Err(ProbeError::unknown_action(other)),
        }
    }
}

register_probe!(Hostile);
