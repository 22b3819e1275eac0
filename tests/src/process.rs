//! A `cairn node` process that cannot outlive the test process that started it.
//!
//! A test binary may end without running a destructor: a panic in a test that
//! holds the shared cluster in a `static` (statics are never dropped), an abort,
//! a SIGKILL from a timeout. So each node is started through a small `sh`
//! wrapper that forks a watchdog and then `exec`s the node, which keeps the
//! wrapper's pid (so signals and exit statuses are the node's own). The watchdog
//! blocks reading a pipe whose only write end the test process holds: when that
//! end closes — however the test process ends — the read sees end-of-file and
//! the watchdog SIGKILLs the node. A test that stops the node itself first
//! writes one line on the pipe, which sends the watchdog away without killing.

use std::io::Write as _;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// The wrapper: `$0` is the program, `"$@"` its arguments. Its stdin (the pipe)
/// moves to fd 3, which only the watchdog keeps; the node gets `/dev/null`.
/// `$$` is the wrapper's pid, which `exec` hands to the node.
const WATCHDOG: &str = r#"exec 3<&0 </dev/null
( if ! read -r _ <&3; then kill -KILL $$; fi ) &
exec "$0" "$@" 3<&-"#;

/// A running (or exited, not yet forgotten) node process.
pub(crate) struct NodeProcess {
    child: Child,
}

impl NodeProcess {
    /// Starts `program args…` with stdout and stderr appended to `log`, and the
    /// environment `env`.
    pub(crate) fn spawn(
        program: &Path,
        args: &[&std::ffi::OsStr],
        log: &Path,
        env: &[(&str, &str)],
    ) -> Self {
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .expect("log file");
        let err = out.try_clone().expect("log file");
        let mut cmd = Command::new("sh");
        cmd.arg("-c").arg(WATCHDOG).arg(program).args(args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .spawn()
            .expect("spawn cairn node");
        Self { child }
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends the watchdog away without killing: called only while the node's pid
    /// cannot be reused (before it is reaped) or right after reaping it.
    fn disarm(&mut self) {
        if let Some(mut pipe) = self.child.stdin.take() {
            // A watchdog already gone (the node exited and took it along) is fine.
            let _ = pipe.write_all(b"\n");
        }
    }

    /// SIGKILL: no chance to flush anything (what dropping does).
    pub(crate) fn kill(self) {
        drop(self);
    }

    /// SIGTERM, then waits up to `grace` for the exit (SIGKILL after that);
    /// whether it exited successfully.
    pub(crate) fn terminate(mut self, grace: Duration) -> bool {
        let sent = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .expect("run kill");
        assert!(sent.success(), "kill -TERM failed");
        let deadline = Instant::now() + grace;
        loop {
            if let Some(status) = self.try_exit() {
                return status.success();
            }
            if Instant::now() > deadline {
                self.kill();
                return false;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The exit status, if the node has exited. The watchdog is disarmed right
    /// after the reaping that frees the pid: for the pid to be reused and then
    /// killed, the test process would have to die in between and the kernel hand
    /// out the same pid at once.
    pub(crate) fn try_exit(&mut self) -> Option<ExitStatus> {
        let status = self.child.try_wait().ok().flatten();
        if status.is_some() {
            self.disarm();
        }
        status
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        // Killed but not yet reaped, the pid is still the node's when the watchdog
        // is sent away. After `try_exit` has reaped, these are no-ops.
        let _ = self.child.kill();
        self.disarm();
        let _ = self.child.wait();
    }
}
