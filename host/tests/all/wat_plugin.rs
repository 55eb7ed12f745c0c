//! Hostile plugins that Rust cannot express (no `table.grow`, no second memory, no loop in
//! `describe`), written as WebAssembly text: a minimal component of the `triage:probe`
//! world whose manifest is laid out in memory by hand, following the canonical ABI.
//!
//! Each action runs its body of WAT instructions and then answers the plugin's `answer`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

pub struct WatPlugin<'a> {
    pub name: &'a str,
    /// Instructions run at the start of `describe()`.
    pub describe_prelude: &'a str,
    /// Import `wasi:clocks` and `wasi:io/poll`, as `$subscribe` (nanoseconds -> pollable)
    /// and `$block` (pollable), for a plugin that sleeps.
    pub sleeps: bool,
    /// (action name, body).
    pub actions: &'a [(&'a str, &'a str)],
    /// The facts every action answers (JSON).
    pub answer: &'a str,
}

/// Where the manifest record, the action records and the strings sit in memory 0.
const MANIFEST_AT: u32 = 0x100;
const ACTIONS_AT: u32 = 0x200;
const STRINGS_AT: u32 = 0x1000;
/// The answer of `run` (a `result<string, probe-error>`), and the heap for `realloc`.
const RETURN_AT: u32 = 0x80;
const HEAP_AT: u32 = 0x10000;

/// Bytes as a WAT string literal.
fn literal(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "\\{b:02x}");
        s
    })
}

fn words(values: &[u32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

impl WatPlugin<'_> {
    pub fn wat(&self) -> String {
        // The string pool; each string's (offset, length).
        let mut pool: Vec<u8> = Vec::new();
        let mut add = |s: &str| -> (u32, u32) {
            let at = STRINGS_AT + pool.len() as u32;
            pool.extend_from_slice(s.as_bytes());
            (at, s.len() as u32)
        };
        let name = add(self.name);
        let version = add("0.1.0");
        let sdk = add("0.1.0");
        let description = add("A hostile plugin written in WebAssembly text");
        let schema = add(r#"{"type":"object"}"#);
        let answer = add(self.answer);
        let mut action_records = Vec::new();
        let mut action_names = Vec::new();
        for (action, _) in self.actions {
            let n = add(action);
            let d = add("misbehaves");
            action_names.push(n);
            action_records.extend(words(&[
                n.0, n.1, d.0, d.1, schema.0, schema.1, schema.0, schema.1, 0, 0,
            ]));
        }
        let manifest = words(&[
            name.0,
            name.1,
            version.0,
            version.1,
            sdk.0,
            sdk.1,
            description.0,
            description.1,
            ACTIONS_AT,
            self.actions.len() as u32,
        ]);
        assert!(STRINGS_AT + pool.len() as u32 <= HEAP_AT);

        let mut dispatch = String::new();
        for (i, (_, body)) in self.actions.iter().enumerate() {
            let (at, len) = action_names[i];
            let _ = writeln!(
                dispatch,
                "(if (call $eq (local.get 0) (local.get 1) (i32.const {at}) (i32.const {len})) (then {body} (return (call $ok))))"
            );
        }

        let (imports, core_imports, lowered, with) = if self.sleeps {
            (
                r#"
  (import "wasi:io/poll@0.2.0" (instance $poll
    (export "pollable" (type (sub resource)))
    (export "[method]pollable.block" (func (param "self" (borrow 0))))))
  (alias export $poll "pollable" (type $pollable))
  (import "wasi:clocks/monotonic-clock@0.2.0" (instance $clock
    (alias outer 1 $pollable (type $p))
    (export "pollable" (type (eq $p)))
    (export "subscribe-duration" (func (param "when" u64) (result (own 1))))))"#,
                r#"
    (import "wasi" "subscribe" (func $subscribe (param i64) (result i32)))
    (import "wasi" "block" (func $block (param i32)))"#,
                r#"
  (core func $subscribe (canon lower (func $clock "subscribe-duration")))
  (core func $block (canon lower (func $poll "[method]pollable.block")))
  (core instance $wasi (export "subscribe" (func $subscribe)) (export "block" (func $block)))"#,
                r#"(with "wasi" (instance $wasi))"#,
            )
        } else {
            ("", "", "", "")
        };

        format!(
            r#"(component
{imports}
  (type $capability-error' (variant (case "denied" string) (case "not-captured" string) (case "failed" string) (case "timed-out" string)))
  (export $capability-error "capability-error" (type $capability-error'))
  (type $capability' (variant (case "exec" (list string)) (case "http" string) (case "read-file" string) (case "resolve" string) (case "connect" string)))
  (export $capability "capability" (type $capability'))
  (type $action' (record (field "name" string) (field "description" string) (field "params-schema" string) (field "output-schema" string) (field "capabilities" (list $capability))))
  (export $action "action" (type $action'))
  (type $manifest' (record (field "name" string) (field "version" string) (field "sdk-version" string) (field "description" string) (field "actions" (list $action))))
  (export $manifest "manifest" (type $manifest'))
  (type $probe-error' (variant (case "unknown-action" string) (case "invalid-params" string) (case "capability" $capability-error) (case "bad-input" string) (case "failed" string)))
  (export $probe-error "probe-error" (type $probe-error'))
  (core module $m
{core_imports}
    (memory $m0 (export "memory") 2)
    (memory $m1 1)
    (memory $m2 1)
    (memory $m3 1)
    (table $t 1 funcref)
    (global $heap (mut i32) (i32.const {HEAP_AT}))
    (data (memory $m0) (i32.const {MANIFEST_AT}) "{manifest}")
    (data (memory $m0) (i32.const {ACTIONS_AT}) "{actions}")
    (data (memory $m0) (i32.const {STRINGS_AT}) "{pool}")
    (func $eq (param $a i32) (param $alen i32) (param $b i32) (param $blen i32) (result i32)
      (if (i32.ne (local.get $alen) (local.get $blen)) (then (return (i32.const 0))))
      (block $done
        (loop $next
          (br_if $done (i32.eqz (local.get $alen)))
          (if (i32.ne (i32.load8_u (local.get $a)) (i32.load8_u (local.get $b))) (then (return (i32.const 0))))
          (local.set $a (i32.add (local.get $a) (i32.const 1)))
          (local.set $b (i32.add (local.get $b) (i32.const 1)))
          (local.set $alen (i32.sub (local.get $alen) (i32.const 1)))
          (br $next)))
      (i32.const 1))
    (func $ok (result i32)
      (i32.store8 (i32.const {RETURN_AT}) (i32.const 0))
      (i32.store (i32.const {ret_ptr}) (i32.const {answer_at}))
      (i32.store (i32.const {ret_len}) (i32.const {answer_len}))
      (i32.const {RETURN_AT}))
    (func (export "describe") (result i32)
      {describe_prelude}
      (i32.const {MANIFEST_AT}))
    (func (export "run") (param i32 i32 i32 i32) (result i32)
      {dispatch}
      (unreachable))
    (func (export "realloc") (param i32 i32 i32 i32) (result i32)
      (local $at i32)
      (local.set $at (i32.and (i32.add (global.get $heap) (i32.const 7)) (i32.const -8)))
      (global.set $heap (i32.add (local.get $at) (local.get 3)))
      (if (i32.gt_u (global.get $heap) (i32.mul (memory.size $m0) (i32.const 65536)))
        (then (drop (memory.grow $m0 (i32.add (i32.shr_u (global.get $heap) (i32.const 16)) (i32.const 1))))))
      (local.get $at)))
{lowered}
  (core instance $i (instantiate $m {with}))
  (func $describe (result $manifest) (canon lift (core func $i "describe") (memory (core memory $i "memory"))))
  (func $run (param "action" string) (param "params" string) (result (result string (error $probe-error)))
    (canon lift (core func $i "run") (memory (core memory $i "memory")) (realloc (core func $i "realloc"))))
  (instance $probe
    (export "capability-error" (type $capability-error))
    (export "capability" (type $capability))
    (export "action" (type $action))
    (export "manifest" (type $manifest))
    (export "probe-error" (type $probe-error))
    (export "describe" (func $describe))
    (export "run" (func $run)))
  (export "triage:probe/probe@0.1.0" (instance $probe)))
"#,
            manifest = literal(&manifest),
            actions = literal(&action_records),
            pool = literal(&pool),
            ret_ptr = RETURN_AT + 4,
            ret_len = RETURN_AT + 8,
            answer_at = answer.0,
            answer_len = answer.1,
            describe_prelude = self.describe_prelude,
        )
    }

    /// Writes `<dir>/<name>.wasm` (the binary component) and returns its path.
    pub fn write(&self, dir: &Path) -> PathBuf {
        let bytes = wat::parse_str(self.wat()).unwrap_or_else(|e| panic!("{}: {e}", self.name));
        std::fs::create_dir_all(dir).unwrap();
        let path = dir.join(format!("{}.wasm", self.name));
        std::fs::write(&path, bytes).unwrap();
        path
    }
}
