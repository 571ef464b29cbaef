//! The files a chaos run leaves in its output directory, one record a line, and how they
//! are written and read back. Every time is milliseconds since the Unix epoch: the
//! processes run in separate network namespaces of one machine and share its clock.
//!
//! | file | written by | line |
//! |---|---|---|
//! | `requests-<worker>.log` | the worker (`WORKER_REQUEST_LOG`) | `<request id>` |
//! | `view-<node>.log` | every node (`MEMBERSHIP_LOG`) | `<ms> <id>=<A\|S\|D\|L>,…` (`-` for none) |
//! | `calls.log` | the load generator | `<ms> <id> <s\|u> <ok\|fail\|wrong> <took ms> <worker or error>` |
//! | `events.log` | the harness | `<ms> <fault> <worker>` |
//! | `stream-<n>.log` | the harness, from a client's stdout | `<ms> <line>` |
//! | `rss.log` | the harness | `<ms> <process> <kB>` |
//!
//! `calls.log` ends with `# retries=<n>` once the load generator has stopped.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rpcnet::cluster::{Cluster, MemberState};

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Opens `path` for appending (created if missing): a restarted process adds to its
/// predecessor's records.
pub fn append(path: &Path) -> io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

/// A worker's record of the request ids it executed, one line each, written before the
/// call is answered: a call its client saw succeed is on disk even if the worker is killed
/// right after (each line is one `write`, so it survives the process).
#[derive(Debug)]
pub struct RequestLog {
    file: Mutex<File>,
}

impl RequestLog {
    /// Appends to `path`.
    pub fn open(path: &Path) -> io::Result<Self> {
        Ok(RequestLog {
            file: Mutex::new(append(path)?),
        })
    }

    /// Records one execution of request `id`.
    pub fn record(&self, id: &str) -> io::Result<()> {
        let line = format!("{id}\n");
        let mut file = match self.file.lock() {
            Ok(file) => file,
            Err(poisoned) => poisoned.into_inner(),
        };
        file.write_all(line.as_bytes())
    }
}

/// The letter a member state is logged as.
fn state_letter(state: MemberState) -> char {
    match state {
        MemberState::Alive => 'A',
        MemberState::Suspect => 'S',
        MemberState::Dead => 'D',
        MemberState::Left => 'L',
        _ => '?',
    }
}

/// Writes `cluster`'s membership view to `path` on every change and every second, until
/// the node stops or writing fails.
pub async fn log_views(cluster: Cluster, path: &Path) -> io::Result<()> {
    let mut file = append(path)?;
    loop {
        let mut members: Vec<(String, char)> = cluster
            .members()
            .iter()
            .map(|m| (m.id().to_string(), state_letter(m.state())))
            .collect();
        members.sort();
        let list: Vec<String> = members.iter().map(|(id, s)| format!("{id}={s}")).collect();
        let list = if list.is_empty() {
            "-".to_owned()
        } else {
            list.join(",")
        };
        file.write_all(format!("{} {list}\n", now_ms()).as_bytes())?;
        let change = tokio::time::timeout(Duration::from_secs(1), cluster.changed()).await;
        if let Ok(Err(_)) = change {
            // The node has stopped.
            return Ok(());
        }
    }
}

/// One node's view at one moment: member id → state letter.
pub type View = BTreeMap<String, char>;

/// Parses a `view-<node>.log` line.
pub fn parse_view(line: &str) -> Option<(u64, View)> {
    let (ms, list) = line.split_once(' ')?;
    let ms = ms.parse().ok()?;
    let mut view = View::new();
    if list != "-" {
        for entry in list.split(',') {
            let (id, state) = entry.split_once('=')?;
            let mut letters = state.chars();
            let (Some(letter), None) = (letters.next(), letters.next()) else {
                return None;
            };
            view.insert(id.to_owned(), letter);
        }
    }
    Some((ms, view))
}

/// What the load generator's client was told about one call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    /// When the outcome was known.
    pub at_ms: u64,
    /// The request id.
    pub id: String,
    /// Whether the call was marked retry-safe.
    pub retry_safe: bool,
    /// What the client was told.
    pub outcome: CallOutcome,
    /// How long the call took, retries included.
    pub took_ms: u64,
    /// The worker that answered, or the error.
    pub detail: String,
}

/// How a call ended for its client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallOutcome {
    /// Succeeded, with the reply for this call's request id.
    Ok,
    /// Failed with an error.
    Failed,
    /// Succeeded with a reply that names another request id.
    WrongReply,
}

impl Call {
    /// The `calls.log` line.
    pub fn line(&self) -> String {
        let outcome = match self.outcome {
            CallOutcome::Ok => "ok",
            CallOutcome::Failed => "fail",
            CallOutcome::WrongReply => "wrong",
        };
        let safe = if self.retry_safe { 's' } else { 'u' };
        format!(
            "{} {} {safe} {outcome} {} {}",
            self.at_ms,
            self.id,
            self.took_ms,
            self.detail.replace('\n', " ")
        )
    }

    /// Parses a `calls.log` line (not a `#` line).
    pub fn parse(line: &str) -> Option<Call> {
        let mut parts = line.splitn(6, ' ');
        let at_ms = parts.next()?.parse().ok()?;
        let id = parts.next()?.to_owned();
        let retry_safe = match parts.next()? {
            "s" => true,
            "u" => false,
            _ => return None,
        };
        let outcome = match parts.next()? {
            "ok" => CallOutcome::Ok,
            "fail" => CallOutcome::Failed,
            "wrong" => CallOutcome::WrongReply,
            _ => return None,
        };
        let took_ms = parts.next()?.parse().ok()?;
        let detail = parts.next().unwrap_or("").to_owned();
        Some(Call {
            at_ms,
            id,
            retry_safe,
            outcome,
            took_ms,
            detail,
        })
    }
}

/// Parses a line `<ms> <rest>` into its time and the rest.
pub fn timed(line: &str) -> Option<(u64, &str)> {
    let (ms, rest) = line.split_once(' ')?;
    Some((ms.parse().ok()?, rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_line_reads_back_as_the_call_it_was_written_from() {
        let call = Call {
            at_ms: 1_700_000_000_123,
            id: "s-42".to_owned(),
            retry_safe: true,
            outcome: CallOutcome::Failed,
            took_ms: 3_012,
            detail: "worker worker-2 lost: connection closed".to_owned(),
        };
        assert_eq!(Call::parse(&call.line()), Some(call));
        assert_eq!(Call::parse("12 u-1 x ok 5 worker-1"), None);
        assert_eq!(Call::parse("12 u-1 u ok worker-1"), None);
    }

    #[test]
    fn a_view_line_reads_back_member_by_member() {
        let (ms, view) = parse_view("17 director=A,worker-1=D,worker-2=S").expect("parses");
        assert_eq!(ms, 17);
        assert_eq!(view.get("worker-1"), Some(&'D'));
        assert_eq!(view.len(), 3);
        assert_eq!(parse_view("18 -").map(|(_, v)| v.len()), Some(0));
        assert_eq!(parse_view("18 worker-1=AS"), None);
    }
}
