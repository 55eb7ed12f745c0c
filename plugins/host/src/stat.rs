//! `stat -c '%U|%u|%G|%g|%a|%F' PATH`: who owns a file and who may write it.

use serde::Serialize;
use triage_sdk::JsonSchema;

use crate::ParseError;

/// The `stat` format the `file-stat` action asks for.
pub const STAT_FORMAT: &str = "%U|%u|%G|%g|%a|%F";

/// Who may write, by permission class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
pub struct WritableBy {
    /// The owner's write bit.
    pub owner: bool,
    /// The group's write bit.
    pub group: bool,
    /// Everyone else's write bit.
    pub others: bool,
}

/// One `stat` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatLine {
    /// Owner name ("UNKNOWN" when the UID has no name).
    pub owner: String,
    /// Owner UID.
    pub uid: u32,
    /// Group name.
    pub group: String,
    /// Group GID.
    pub gid: u32,
    /// Octal permission bits as stat prints them ("644", "1777").
    pub mode: String,
    /// The mode's value.
    pub mode_bits: u32,
    /// File type ("regular file", "directory", ...).
    pub kind: String,
}

impl StatLine {
    /// The write bits.
    pub fn writable_by(&self) -> WritableBy {
        WritableBy {
            owner: self.mode_bits & 0o200 != 0,
            group: self.mode_bits & 0o020 != 0,
            others: self.mode_bits & 0o002 != 0,
        }
    }

    /// Whether `uid` may write: root may; the owner by the owner bit; anyone by the others
    /// bit. `None` when only the group bit could allow it: group membership is not known here.
    pub fn writable_by_uid(&self, uid: u32) -> Option<bool> {
        let bits = self.writable_by();
        if uid == 0 || bits.others {
            return Some(true);
        }
        if uid == self.uid {
            return Some(bits.owner);
        }
        if bits.group { None } else { Some(false) }
    }
}

/// Parses the first line of `stat -c STAT_FORMAT` output.
pub fn parse_stat(text: &str) -> Result<StatLine, ParseError> {
    let line = text
        .lines()
        .find(|l| !l.trim().is_empty())
        .ok_or_else(|| ParseError("stat printed nothing".to_owned()))?;
    let fields: Vec<&str> = line.trim_end_matches(['\r', '\n']).splitn(6, '|').collect();
    let [owner, uid, group, gid, mode, kind] = fields[..] else {
        return Err(ParseError(format!(
            "expected owner|uid|group|gid|mode|type, got {:?}",
            line.chars().take(120).collect::<String>()
        )));
    };
    let id = |name: &str, text: &str| {
        text.trim()
            .parse::<u32>()
            .map_err(|_| ParseError(format!("{name} is not a number: {text:?}")))
    };
    let mode = mode.trim();
    let octal =
        !mode.is_empty() && mode.len() <= 4 && mode.bytes().all(|b| (b'0'..=b'7').contains(&b));
    let mode_bits = octal
        .then(|| u32::from_str_radix(mode, 8).ok())
        .flatten()
        .ok_or_else(|| ParseError(format!("mode is not octal permission bits: {mode:?}")))?;
    Ok(StatLine {
        owner: owner.trim().to_owned(),
        uid: id("uid", uid)?,
        group: group.trim().to_owned(),
        gid: id("gid", gid)?,
        mode: mode.to_owned(),
        mode_bits,
        kind: kind.trim().to_owned(),
    })
}

/// What the `file-stat` action reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct FileStatFacts {
    /// The path examined.
    pub path: String,
    /// Whether stat found it; false with `error` when it does not exist (or stat failed).
    pub exists: bool,
    /// Why stat gave no answer.
    pub error: Option<String>,
    /// Owner name.
    pub owner: Option<String>,
    /// Owner UID.
    pub uid: Option<u32>,
    /// Group name.
    pub group: Option<String>,
    /// Group GID.
    pub gid: Option<u32>,
    /// Octal permission bits, e.g. "644".
    pub mode: Option<String>,
    /// File type: "regular file", "regular empty file", "directory", "symbolic link", ...
    pub kind: Option<String>,
    /// The write bits per class.
    pub writable_by: Option<WritableBy>,
    /// The `user_uid` param, echoed.
    pub user_uid: Option<u32>,
    /// Whether `user_uid` may write the file: true for root, the owner with the owner write
    /// bit, or anyone with the others write bit; null when no `user_uid` was given or only the
    /// group write bit could allow it (group membership is not known).
    pub writable_by_user: Option<bool>,
    /// How `writable_by_user` was decided.
    pub writable_by_user_reason: Option<String>,
}

/// Builds the facts from stat's output (or why it failed).
pub fn file_stat_facts(
    path: &str,
    output: Result<String, triage_sdk::CapabilityError>,
    user_uid: Option<u32>,
) -> Result<FileStatFacts, triage_sdk::ProbeError> {
    let mut facts = FileStatFacts {
        path: path.to_owned(),
        exists: false,
        error: None,
        owner: None,
        uid: None,
        group: None,
        gid: None,
        mode: None,
        kind: None,
        writable_by: None,
        user_uid,
        writable_by_user: None,
        writable_by_user_reason: None,
    };
    let text = match output {
        Ok(text) => text,
        Err(triage_sdk::CapabilityError::Failed(e)) => {
            facts.error = Some(e);
            return Ok(facts);
        }
        Err(other) => return Err(triage_sdk::ProbeError::Capability(other)),
    };
    let stat = parse_stat(&text).map_err(|e| triage_sdk::ProbeError::bad_input(e.0))?;
    let bits = stat.writable_by();
    if let Some(uid) = user_uid {
        facts.writable_by_user = stat.writable_by_uid(uid);
        facts.writable_by_user_reason = Some(writable_reason(&stat, uid, bits).to_owned());
    }
    facts.exists = true;
    facts.writable_by = Some(bits);
    facts.owner = Some(stat.owner);
    facts.uid = Some(stat.uid);
    facts.group = Some(stat.group);
    facts.gid = Some(stat.gid);
    facts.mode = Some(stat.mode);
    facts.kind = Some(stat.kind);
    Ok(facts)
}

fn writable_reason(stat: &StatLine, uid: u32, bits: WritableBy) -> &'static str {
    match () {
        _ if uid == 0 => "root may write any file",
        _ if bits.others => "the others write bit is set",
        _ if uid == stat.uid && bits.owner => {
            "the user owns the file and the owner write bit is set"
        }
        _ if uid == stat.uid => "the user owns the file but the owner write bit is clear",
        _ if bits.group => {
            "only the group write bit is set; whether the user is in the file's group is not known"
        }
        _ => "the user is not the owner and neither the group nor the others write bit is set",
    }
}
