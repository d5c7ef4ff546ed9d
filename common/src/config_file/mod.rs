//! `sfsync.toml`: the optional settings file, layered under flags and the environment.
//!
//! Precedence is flag > environment > file > built-in default. The file is not a second
//! schema: each key of a section is the name of a clap argument of the command the section
//! belongs to (`prefetch` is `--prefetch`, `shutdown_timeout` is `--shutdown-timeout`), and
//! its value becomes that argument's default before the command line is parsed, so clap's own
//! precedence puts flags and environment first and the argument's own value parser checks the
//! file's value. A new flag can therefore be set from the file without any code here.
//!
//! Sections: `[worker]` for the worker, `[sync]`, `[reconcile]`, `[status]`, `[dlq]` for the
//! producer's commands, and shared sections (`[services]`, `[salesforce]`) whose keys apply to
//! every command that has the setting. A binary checks its own sections and leaves the other
//! binary's alone; a section or key nobody knows is an error naming it, so a typo is never
//! silently ignored.
//!
//! This module owns the file: finding it, reading it, checking its sections and keys, and the
//! errors. The private `layer` module applies its values to a command as clap defaults
//! ([`parse_layered`]).

mod layer;

use std::{
    ffi::OsString,
    path::{Path, PathBuf},
};

use clap::Command;

pub use layer::{Layer, parse_layered};
use layer::{find_arg, settable_args};

/// The file read when neither `--config` nor `SFSYNC_CONFIG` names one (if it exists).
pub const DEFAULT_PATH: &str = "sfsync.toml";
/// The environment variable naming the file.
pub const CONFIG_ENV: &str = "SFSYNC_CONFIG";

/// Every section either binary reads; anything else is a typo.
pub const KNOWN_SECTIONS: &[&str] = &[
    "services",
    "worker",
    "sync",
    "reconcile",
    "status",
    "dlq",
    "salesforce",
    "objects",
];

/// What went wrong with the settings file; the text names the file, the key and the reason.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: cannot read the settings file: {reason}")]
    Read { path: String, reason: String },
    #[error("{path}: not valid TOML at line {line}, column {column}: {reason}")]
    Syntax {
        path: String,
        line: usize,
        column: usize,
        reason: String,
    },
    /// Settings that do not fit together.
    #[error("{0}")]
    Invalid(String),
    /// A key or value that cannot be used, e.g. `worker.prefetch: 0 is not in 1..=65535`.
    #[error("{path}: {key}: {reason}")]
    Setting {
        path: String,
        key: String,
        reason: String,
    },
}

/// Why the command line and settings could not be turned into arguments.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// Usage errors, `--help` and `--version`: clap prints these itself.
    #[error(transparent)]
    Clap(#[from] clap::Error),
    #[error(transparent)]
    File(#[from] ConfigError),
}

impl LoadError {
    /// Prints the error (or the help) and exits: clap's exit codes for clap's errors, 1 with
    /// one `error:` line for a settings file problem.
    pub fn exit(self) -> ! {
        match self {
            LoadError::Clap(e) => e.exit(),
            LoadError::File(e) => {
                eprintln!("error: {e}");
                std::process::exit(1)
            }
        }
    }
}

/// A parsed `sfsync.toml`. Its `Debug` shows the path and section names only: the values may
/// hold secrets.
#[derive(Clone)]
pub struct ConfigFile {
    /// As the user named it, for messages.
    pub path: String,
    pub doc: toml::Table,
}

impl std::fmt::Debug for ConfigFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConfigFile")
            .field("path", &self.path)
            .field("sections", &self.doc.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl ConfigFile {
    /// Reads and parses the file at `path`.
    ///
    /// # Errors
    /// The file cannot be read or is not TOML.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read {
            path: shown.clone(),
            reason: e.to_string(),
        })?;
        Self::parse(&shown, &text)
    }

    /// Parses `text` as the contents of the file `path`.
    ///
    /// # Errors
    /// `text` is not TOML.
    pub fn parse(path: &str, text: &str) -> Result<Self, ConfigError> {
        let doc = toml::from_str::<toml::Table>(text).map_err(|e| {
            let at = e.span().map_or(0, |s| s.start);
            let before = &text[..at.min(text.len())];
            ConfigError::Syntax {
                path: path.to_owned(),
                line: before.matches('\n').count() + 1,
                column: before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1,
                reason: e.message().trim().replace('\n', "; "),
            }
        })?;
        Ok(Self {
            path: path.to_owned(),
            doc,
        })
    }

    /// The file `--config`/`SFSYNC_CONFIG` names (which must exist), else `./sfsync.toml` if
    /// it exists, else none.
    ///
    /// # Errors
    /// The named file is missing or unreadable, or is not TOML.
    pub fn find(argv: &[OsString]) -> Result<Option<Self>, ConfigError> {
        let from_env = std::env::var_os(CONFIG_ENV).filter(|p| !p.is_empty());
        if let Some(path) = config_flag(argv).or(from_env) {
            return Self::load(Path::new(&path)).map(Some);
        }
        let default = PathBuf::from(DEFAULT_PATH);
        if default.exists() {
            return Self::load(&default).map(Some);
        }
        Ok(None)
    }

    fn error(&self, key: impl Into<String>, reason: impl Into<String>) -> ConfigError {
        ConfigError::Setting {
            path: self.path.clone(),
            key: key.into(),
            reason: reason.into(),
        }
    }

    /// Refuses top-level keys and sections outside [`KNOWN_SECTIONS`].
    ///
    /// # Errors
    /// Names the first unknown section or key.
    pub fn check_sections(&self) -> Result<(), ConfigError> {
        for (name, value) in &self.doc {
            if !value.is_table() {
                return Err(self.error(
                    name,
                    "a setting outside any section; settings go in a section such as [worker] or [sync]",
                ));
            }
            if !KNOWN_SECTIONS.contains(&name.as_str()) {
                return Err(self.error(
                    name,
                    format!(
                        "unknown section; the sections are {}",
                        KNOWN_SECTIONS
                            .iter()
                            .map(|s| format!("[{s}]"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Section `name`, if the file has it.
    pub fn section(&self, name: &str) -> Option<&toml::Table> {
        self.doc.get(name).and_then(toml::Value::as_table)
    }

    /// Checks that every key of section `name` is an argument of `cmd`.
    ///
    /// # Errors
    /// Names the unknown key and lists the known ones.
    pub fn check_keys(&self, name: &str, cmd: &Command) -> Result<(), ConfigError> {
        let Some(table) = self.section(name) else {
            return Ok(());
        };
        for key in table.keys() {
            if find_arg(cmd, key).is_none() {
                return Err(self.error(
                    format!("{name}.{key}"),
                    format!(
                        "unknown setting; [{name}] takes {}",
                        settable_args(cmd).join(", ")
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// The value of `--config` in `argv`, read before clap parses (the file shapes the parse).
fn config_flag(argv: &[OsString]) -> Option<OsString> {
    let mut args = argv.iter().skip(1);
    while let Some(arg) = args.next() {
        let text = arg.to_string_lossy();
        if text == "--" {
            break;
        }
        if text == "--config" {
            return args.next().cloned();
        }
        if let Some(path) = text.strip_prefix("--config=") {
            return Some(path.into());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_sections_are_errors() {
        let file = ConfigFile::parse("x.toml", "[wroker]\nprefetch = 1").unwrap();
        let e = file.check_sections().unwrap_err().to_string();
        assert!(
            e.starts_with("x.toml: wroker: unknown section; the sections are [services]"),
            "{e}"
        );
        let file = ConfigFile::parse("x.toml", "prefetch = 1").unwrap();
        let e = file.check_sections().unwrap_err().to_string();
        assert!(
            e.starts_with("x.toml: prefetch: a setting outside any section"),
            "{e}"
        );
    }

    #[test]
    fn debug_output_hides_the_values() {
        let file = ConfigFile::parse(
            "f.toml",
            "[services]\ndatabase_url = \"postgres://u:hunter2@h/d\"",
        )
        .unwrap();
        let shown = format!("{file:?}");
        assert!(
            shown.contains("services") && !shown.contains("hunter2"),
            "{shown}"
        );
    }

    #[test]
    fn config_flag_is_found_before_parsing() {
        let argv = |a: &[&str]| a.iter().map(OsString::from).collect::<Vec<_>>();
        assert_eq!(
            config_flag(&argv(&["w", "--config", "a.toml"])),
            Some("a.toml".into())
        );
        assert_eq!(
            config_flag(&argv(&["w", "sync", "--config=b.toml"])),
            Some("b.toml".into())
        );
        assert_eq!(config_flag(&argv(&["w", "--", "--config", "c"])), None);
    }

    #[test]
    fn a_missing_named_file_is_an_error() {
        let e = ConfigFile::load(Path::new("/nonexistent/sfsync.toml")).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("/nonexistent/sfsync.toml: cannot read the settings file:"),
            "{e}"
        );
    }
}
