//! A private directory holding an `sfsync.toml` for a test's binaries (and their working
//! directory, so that no stray `./sfsync.toml` is read), removed on drop.

use std::{path::PathBuf, process::Stdio};

use crate::TestEnv;

/// The directory; see the module documentation.
pub struct ConfigDir(PathBuf);

impl ConfigDir {
    /// Makes the directory for `env` and writes `toml` into its `sfsync.toml`.
    pub fn new(env: &TestEnv, toml: &str) -> Self {
        let dir = std::env::temp_dir().join(&env.name);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("sfsync.toml"), toml).unwrap();
        Self(dir)
    }

    /// The settings file's path.
    pub fn file(&self) -> String {
        self.0.join("sfsync.toml").display().to_string()
    }

    /// A command for `binary` run in this directory with the test's services and `extra`
    /// environment, no input, killed when dropped.
    pub fn command(
        &self,
        binary: &str,
        args: &[&str],
        env: &TestEnv,
        extra: &[(&str, String)],
    ) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(binary);
        cmd.args(args)
            .current_dir(&self.0)
            .envs(env.process_env())
            .envs(extra.iter().map(|(k, v)| (*k, v.as_str())))
            .stdin(Stdio::null())
            .kill_on_drop(true);
        cmd
    }
}

impl Drop for ConfigDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The environment that points the producer at a fake org (its demo credentials).
pub fn sf_env(org: &fake_salesforce::FakeOrg) -> Vec<(&'static str, String)> {
    vec![
        ("SF_LOGIN_URL", org.base_url()),
        ("SF_CLIENT_ID", "demo".into()),
        ("SF_CLIENT_SECRET", "demo".into()),
    ]
}
