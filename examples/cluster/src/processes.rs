//! Running the example's binaries as child processes and reading their lines: what the
//! demo and the end-to-end tests share. A [`Process`] kills its child when dropped, so a
//! failing test or an interrupted demo leaves nothing running.

use std::io::{BufRead, BufReader, Read};
use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One line a child printed, when it was read.
#[derive(Debug, Clone)]
pub struct Line {
    /// When the line was read.
    pub at: Instant,
    /// The line, without its end.
    pub text: String,
}

/// Where a child's lines go besides its log: `None` keeps them, `Some(prefix)` also
/// prints them on stdout after the prefix.
pub type Echo = Option<String>;

/// A running child process and every line it has printed on stdout and stderr.
#[derive(Debug)]
pub struct Process {
    name: String,
    child: Child,
    lines: Arc<Mutex<Vec<Line>>>,
}

impl Process {
    /// Starts `program` with the extra environment `env`, named `name` in messages.
    pub fn start(
        name: &str,
        program: &Path,
        env: &[(&str, String)],
        args: &[String],
        echo: Echo,
    ) -> std::io::Result<Process> {
        let mut command = Command::new(program);
        command
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (key, value) in env {
            command.env(key, value);
        }
        let mut child = command.spawn().map_err(|e| {
            std::io::Error::new(e.kind(), format!("cannot start {}: {e}", program.display()))
        })?;
        let lines = Arc::new(Mutex::new(Vec::new()));
        if let Some(stdout) = child.stdout.take() {
            read_lines(stdout, Arc::clone(&lines), echo.clone());
        }
        if let Some(stderr) = child.stderr.take() {
            read_lines(stderr, Arc::clone(&lines), echo);
        }
        Ok(Process {
            name: name.to_owned(),
            child,
            lines,
        })
    }

    /// The name it was started with.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Every line so far.
    pub fn lines(&self) -> Vec<Line> {
        match self.lines.lock() {
            Ok(lines) => lines.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Waits until a line read at or after `since` satisfies `wanted`, at most `patience`;
    /// returns it.
    pub fn wait_for(
        &self,
        since: Instant,
        patience: Duration,
        wanted: impl Fn(&str) -> bool,
    ) -> Option<Line> {
        let give_up = Instant::now() + patience;
        loop {
            if let Some(line) = self
                .lines()
                .into_iter()
                .find(|l| l.at >= since && wanted(&l.text))
            {
                return Some(line);
            }
            if Instant::now() >= give_up {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Kills the child with SIGKILL (no chance to say goodbye) and reaps it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The exit status, if it has exited.
    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// The OS process id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

fn read_lines(from: impl Read + Send + 'static, into: Arc<Mutex<Vec<Line>>>, echo: Echo) {
    std::thread::spawn(move || {
        for text in BufReader::new(from).lines() {
            let Ok(text) = text else { break };
            if let Some(prefix) = &echo {
                // The demo's console: each child's lines after its name.
                #[allow(clippy::print_stdout)]
                {
                    println!("{prefix}{text}");
                }
            }
            let line = Line {
                at: Instant::now(),
                text,
            };
            match into.lock() {
                Ok(mut lines) => lines.push(line),
                Err(poisoned) => poisoned.into_inner().push(line),
            }
        }
    });
}

/// A UDP port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> std::io::Result<u16> {
    Ok(UdpSocket::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// The path of a sibling binary of the running executable (`director`, `worker`, …).
pub fn sibling(name: &str) -> std::io::Result<PathBuf> {
    let me = std::env::current_exe()?;
    let dir = me
        .parent()
        .ok_or_else(|| std::io::Error::other("the executable has no directory"))?;
    Ok(dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX)))
}

/// A token line of the client: `(sequence, worker)`.
pub fn token(line: &str) -> Option<(u64, String)> {
    let rest = line.strip_prefix("📦 received token (sequence=")?;
    let (sequence, rest) = rest.split_once(',')?;
    let worker = rest.rsplit_once("worker=")?.1.trim_end_matches(')');
    Some((sequence.parse().ok()?, worker.to_owned()))
}
