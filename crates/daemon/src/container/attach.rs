//! `attach` and `resize`: connect a client to the init process' stdio through the shim.
//! Attaching to a container that is not running yet parks the client until `start`
//! connects it, so no output is lost (`docker run` attaches before it starts).
use berth_api::{ApiError, AttachOptions, ProcessStream, Session};
use tokio::sync::oneshot;

use super::{Containers, PendingAttach};

impl Containers {
    pub async fn attach_container(
        &self,
        key: &str,
        opts: AttachOptions,
    ) -> Result<Session, ApiError> {
        let c = self.get(key)?;
        let rec = c.snapshot();
        let tty = rec.config.tty.unwrap_or(false);
        let stdin = opts.stdin && rec.config.open_stdin.unwrap_or(false);
        let (stdout, stderr) = (opts.stdout, opts.stderr);
        self.emit(&c, "attach", &[]);
        if rec.state.status.is_running() {
            let shim = self.shim(&c.id);
            let stream = shim
                .attach(stdin, stdout, stderr)
                .await
                .map_err(|e| ApiError::from_chain(&e))?;
            let boxed: Box<dyn ProcessStream> = Box::new(stream);
            return Ok(Session {
                tty,
                stdin,
                stream: Box::pin(async move { Ok(boxed) }),
            });
        }
        let (tx, rx) = oneshot::channel();
        c.pending.lock().expect("pending lock").push(PendingAttach {
            stdin,
            stdout,
            stderr,
            tx,
        });
        Ok(Session {
            tty,
            stdin,
            stream: Box::pin(async move {
                rx.await
                    .map(|s| Box::new(s) as Box<dyn ProcessStream>)
                    .map_err(|_| String::new())
            }),
        })
    }

    pub async fn resize_container(
        &self,
        key: &str,
        height: u16,
        width: u16,
    ) -> Result<(), ApiError> {
        let c = self.get(key)?;
        if !c.status().is_running() {
            return Err(ApiError::conflict(format!(
                "Container {} is not running",
                c.id
            )));
        }
        self.shim(&c.id)
            .resize(None, height, width)
            .await
            .map_err(|e| ApiError::from_chain(&e))?;
        self.emit(
            &c,
            "resize",
            &[("height", height.to_string()), ("width", width.to_string())],
        );
        Ok(())
    }
}
