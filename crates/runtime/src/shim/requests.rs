//! Control requests ([`crate::protocol::Request`]) and exec through libcontainer's tenant
//! builder. Responses are one short JSON line, written to a fresh socket (it always fits
//! in the socket buffer, so writing never blocks the loop).
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;

use libcontainer::container::builder::ContainerBuilder;
use libcontainer::container::ContainerStatus;
use libcontainer::syscall::syscall::SyscallType;

use super::conn::{Stream, Target};
use super::server::{ExecEntry, Shim};
use super::stdio::{set_winsize, Stdio};
use super::{error_chain, exec_error};
use crate::protocol::{ExecProcess, ProcessState, Request, Response};

fn respond(sock: &mut UnixStream, r: &Response) -> bool {
    let mut s = serde_json::to_string(r).unwrap_or_default();
    s.push('\n');
    sock.write_all(s.as_bytes()).is_ok()
}

fn ok() -> Response {
    Response::Ok { pid: None }
}

fn err(message: impl Into<String>) -> Response {
    Response::Error {
        message: message.into(),
    }
}

impl Shim {
    /// Handles one request line; `extra` is whatever the client sent after it (stream input).
    pub fn handle(&mut self, mut sock: UnixStream, line: &str, extra: Vec<u8>) {
        let req: Request = match serde_json::from_str(line.trim()) {
            Ok(r) => r,
            Err(e) => {
                respond(&mut sock, &err(format!("bad request: {e}")));
                return;
            }
        };
        let r = match req {
            Request::State => Response::State(ProcessState {
                pid: self.init_pid as u32,
                running: self.init_exit.is_none(),
                exit: self.init_exit.clone(),
            }),
            Request::Start => self.start(),
            Request::Kill { signal, all } => self.kill(signal, all),
            Request::Resize {
                exec_id,
                height,
                width,
            } => self.resize(exec_id.as_deref(), height, width),
            Request::Attach {
                stdin,
                stdout,
                stderr,
            } => {
                if !respond(&mut sock, &ok()) {
                    return;
                }
                let stdin = stdin && self.cfg.open_stdin;
                let mut s = Stream::new(sock, Target::Init, stdin, stdout, stderr, self.cfg.tty);
                if self.init_exit.is_some() && !self.io.output_open() {
                    s.closing = true;
                }
                if stdin && !extra.is_empty() {
                    self.io.feed(&extra);
                }
                self.streams.push(s);
                return;
            }
            Request::Exec { exec_id, process } => {
                if self.init_exit.is_some() {
                    err("container is not running")
                } else {
                    match self.exec(&exec_id, &process) {
                        Ok(pid) => {
                            if !respond(
                                &mut sock,
                                &Response::Ok {
                                    pid: Some(pid as u32),
                                },
                            ) {
                                return;
                            }
                            let s = Stream::new(
                                sock,
                                Target::Exec(exec_id.clone()),
                                process.stdin,
                                true,
                                true,
                                process.tty,
                            );
                            if process.stdin && !extra.is_empty() {
                                if let Some(e) = self.execs.get_mut(&exec_id) {
                                    e.io.feed(&extra);
                                }
                            }
                            self.streams.push(s);
                            // The exec may already have exited before we were told its pid.
                            self.reap();
                            return;
                        }
                        Err(m) => err(m),
                    }
                }
            }
            Request::ExecState { exec_id } => match self.execs.get(&exec_id) {
                Some(e) => Response::State(ProcessState {
                    pid: e.pid as u32,
                    running: e.exit.is_none(),
                    exit: e.exit.clone(),
                }),
                None => err(format!("no such exec: {exec_id}")),
            },
            // Answered only once exit.json is written (by `finish`, which also answers the
            // queued waiters).
            Request::Wait => match &self.init_exit {
                Some(st) if self.finished() => Response::Exited(st.clone()),
                _ => {
                    self.waiters.push(sock);
                    return;
                }
            },
            Request::Shutdown => {
                if self.init_exit.is_some() {
                    respond(&mut sock, &ok());
                    self.finish();
                    return;
                }
                err("container is running")
            }
        };
        respond(&mut sock, &r);
    }

    fn start(&mut self) -> Response {
        match self.container.start() {
            Ok(()) => Response::Ok {
                pid: Some(self.init_pid as u32),
            },
            Err(e) => err(super::create_error(&error_chain(&e), &self.init_argv0)),
        }
    }

    fn kill(&mut self, signal: i32, all: bool) -> Response {
        if self.init_exit.is_some() {
            return err("container is not running");
        }
        if !all {
            // SAFETY: kill(2) on our own, not yet reaped, child.
            if unsafe { libc::kill(self.init_pid, signal) } != 0 {
                return err(format!(
                    "killing the init process: {}",
                    std::io::Error::last_os_error()
                ));
            }
            return ok();
        }
        let sig = match libcontainer::signal::Signal::try_from(signal) {
            Ok(s) => s,
            Err(e) => return err(e.to_string()),
        };
        let before = self.container.status();
        match self.container.kill(sig, true) {
            Ok(()) => {
                // libcontainer records "stopped" after any signal; a process that survived
                // it (SIGTERM trapped) must still accept execs.
                if signal != libc::SIGKILL
                    && matches!(before, ContainerStatus::Running | ContainerStatus::Created)
                {
                    let _ = self.container.set_status(before).save();
                }
                ok()
            }
            Err(e) => {
                // Fall back to the init process: its death ends the pid namespace.
                // SAFETY: kill(2) on our own, not yet reaped, child.
                if unsafe { libc::kill(self.init_pid, signal) } == 0 {
                    ok()
                } else {
                    err(error_chain(&e))
                }
            }
        }
    }

    fn resize(&mut self, exec_id: Option<&str>, height: u16, width: u16) -> Response {
        let fd = match exec_id {
            None => self.io.pty.as_ref().map(|f| f.as_raw_fd()),
            Some(id) => match self.execs.get(id) {
                Some(e) => e.io.pty.as_ref().map(|f| f.as_raw_fd()),
                None => return err(format!("no such exec: {id}")),
            },
        };
        match fd {
            Some(fd) => match set_winsize(fd, height, width) {
                Ok(()) => ok(),
                Err(e) => err(format!("resizing the terminal: {e}")),
            },
            None => err("the process has no terminal"),
        }
    }

    /// Starts an exec process through libcontainer's tenant builder; returns its pid.
    fn exec(&mut self, exec_id: &str, p: &ExecProcess) -> Result<i32, String> {
        if self.execs.contains_key(exec_id) {
            return Err(format!("exec {exec_id} already exists"));
        }
        self.exec_seq += 1;
        let name = format!("x{}", self.exec_seq);
        let mut process = self.init_process.clone();
        process["args"] = serde_json::json!(p.args);
        process["env"] = serde_json::json!(p.env);
        process["cwd"] = serde_json::json!(if p.cwd.is_empty() {
            "/"
        } else {
            p.cwd.as_str()
        });
        process["terminal"] = serde_json::json!(p.tty);
        process["user"] =
            serde_json::json!({"uid": p.uid, "gid": p.gid, "additionalGids": p.additional_gids});
        if let Some(o) = process.as_object_mut() {
            o.remove("consoleSize");
        }
        if let Some((h, w)) = p.console_size {
            process["consoleSize"] = serde_json::json!({"height": h, "width": w});
        }
        let process_path = self.bundle.join(format!("{name}.json"));
        std::fs::write(&process_path, process.to_string())
            .map_err(|e| format!("writing {}: {e}", process_path.display()))?;
        let stdio = match Stdio::new(&self.bundle, &name, p.tty, p.stdin) {
            Ok(s) => s,
            Err(e) => {
                let _ = std::fs::remove_file(&process_path);
                return Err(format!("creating the exec's stdio: {e}"));
            }
        };
        let mut stdio = stdio;
        let res = ContainerBuilder::new(self.cfg.id.clone(), SyscallType::default())
            .with_root_path(self.cfg.runtime_root.clone())
            .and_then(|b| {
                stdio
                    .wire(b, self.executor.clone())
                    .as_tenant()
                    .with_detach(true)
                    .with_process(Some(&process_path))
                    .build()
            });
        let _ = std::fs::remove_file(&process_path);
        let pid = match res {
            Ok(pid) => pid.as_raw(),
            Err(e) => {
                stdio.discard();
                return Err(exec_error(
                    &error_chain(&e),
                    p.args.first().map(String::as_str).unwrap_or(""),
                ));
            }
        };
        let io = match stdio.finish(p.console_size) {
            Ok(io) => io,
            Err(e) => {
                // SAFETY: kill(2) on the exec we just created; it is reaped by the loop.
                unsafe { libc::kill(pid, libc::SIGKILL) };
                return Err(format!("receiving the exec's console: {e}"));
            }
        };
        self.execs.insert(
            exec_id.to_owned(),
            ExecEntry {
                pid,
                io,
                exit: None,
            },
        );
        Ok(pid)
    }
}
