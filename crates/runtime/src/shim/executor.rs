//! The workload executor handed to libcontainer: libcontainer's default one (validate the
//! executable, `execvp`), plus what libcontainer leaves out of the OCI spec — a terminal
//! process gets `process.consoleSize` applied to its pty before it execs, as runc does.
//! (Setting it from the shim after receiving the pty master would race with the process.)
//! With a precompiled seccomp program, `validate` (the first hook that runs in the init,
//! before it reports ready) loads it and drops to the real capabilities
//! (`super::security`).
use std::sync::Arc;

use libcontainer::workload::default::DefaultExecutor;
use libcontainer::workload::{Executor, ExecutorError, ExecutorValidationError};
use oci_spec::runtime::Spec;

#[derive(Clone, Default)]
pub struct ShimExecutor {
    pub security: Option<Arc<super::security::Deferred>>,
}

impl Executor for ShimExecutor {
    fn exec(&self, spec: &Spec) -> Result<(), ExecutorError> {
        if let Some(p) = spec.process() {
            if let (Some(true), Some(size)) = (p.terminal(), p.console_size()) {
                let rows = u16::try_from(size.height()).unwrap_or(u16::MAX);
                let cols = u16::try_from(size.width()).unwrap_or(u16::MAX);
                // stdin is the pty slave here; TIOCSWINSZ on it sizes the pty pair.
                let _ = super::stdio::set_winsize(0, rows, cols);
            }
        }
        DefaultExecutor {}.exec(spec)
    }

    fn validate(&self, spec: &Spec) -> Result<(), ExecutorValidationError> {
        if let Some(d) = &self.security {
            d.apply()
                .map_err(ExecutorValidationError::ArgValidationError)?;
        }
        DefaultExecutor {}.validate(spec)
    }
}
