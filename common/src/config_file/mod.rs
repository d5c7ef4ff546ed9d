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

use std::{
    ffi::OsString,
    path::{Path, PathBuf},
};

use clap::{ArgMatches, Command, parser::ValueSource};

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

/// One section's values, applied to the invoked command.
#[derive(Debug, Clone)]
pub struct Layer {
    /// The section's name in the file.
    pub section: String,
    /// Whether every key must be an argument of the command: false for shared sections, whose
    /// keys apply only to the commands that have them (their keys are checked elsewhere).
    pub strict: bool,
}

/// Parses `argv` with `cmd`, taking each argument not given as a flag or in the environment
/// from the file's sections in `layers` (later layers win), checked by the argument's own
/// value parser. `layers_for` gives the layers of the invoked subcommand (`None`: the root
/// command; `Some(name)`: that subcommand).
///
/// Also adds `--config` (global) so that it shows in `--help` and is accepted anywhere.
///
/// # Errors
/// A usage error (or `--help`), or a file value that does not fit its argument.
pub fn parse_layered(
    cmd: Command,
    argv: Vec<OsString>,
    file: Option<&ConfigFile>,
    layers_for: impl Fn(Option<&str>) -> Vec<Layer>,
) -> Result<ArgMatches, LoadError> {
    let cmd = with_config_arg(cmd);
    // First the command line and environment alone: usage errors and --help are theirs.
    let bare = cmd.clone().try_get_matches_from(argv.clone())?;
    let Some(file) = file else {
        return Ok(bare);
    };
    let (sub, sub_matches) = match bare.subcommand() {
        Some((name, m)) => (Some(name.to_owned()), m.clone()),
        None => (None, bare.clone()),
    };
    let target = match &sub {
        Some(name) => cmd
            .find_subcommand(name)
            .cloned()
            .expect("clap matched this subcommand"),
        None => cmd.clone(),
    };
    let mut cmd = cmd;
    for layer in layers_for(sub.as_deref()) {
        let Some(table) = file.section(&layer.section) else {
            continue;
        };
        for (key, value) in table {
            let Some(arg) = find_arg(&target, key) else {
                if layer.strict {
                    return Err(file
                        .error(
                            format!("{}.{key}", layer.section),
                            format!(
                                "unknown setting; [{}] takes {}",
                                layer.section,
                                settable_args(&target).join(", ")
                            ),
                        )
                        .into());
                }
                continue;
            };
            let id = arg.get_id().as_str().to_owned();
            // Given as a flag or in the environment: the file's value is not used.
            if matches!(
                sub_matches.value_source(&id),
                Some(ValueSource::CommandLine | ValueSource::EnvVariable)
            ) {
                continue;
            }
            let full_key = format!("{}.{key}", layer.section);
            let secret = arg.is_hide_env_values_set();
            let values = file_values(arg, value).map_err(|reason| file.error(&full_key, reason))?;
            let set = |a: clap::Arg| {
                let a = a.default_values(values.clone());
                // A secret from the file must not show in --help.
                if secret {
                    a.hide_default_value(true)
                } else {
                    a
                }
            };
            let candidate = match &sub {
                Some(name) => cmd.clone().mut_subcommand(name, |s| s.mut_arg(&id, set)),
                None => cmd.clone().mut_arg(&id, set),
            };
            // The argument's own value parser judges the value, so that the file accepts and
            // refuses exactly what the flag does.
            if let Err(e) = candidate.clone().try_get_matches_from(argv.clone()) {
                return Err(file.error(full_key, reason_of(&e, value, secret)).into());
            }
            cmd = candidate;
        }
    }
    Ok(cmd.try_get_matches_from(argv)?)
}

/// Adds `--config <PATH>` / `SFSYNC_CONFIG` to a command.
fn with_config_arg(cmd: Command) -> Command {
    cmd.arg(
        clap::Arg::new("config")
            .long("config")
            .env(CONFIG_ENV)
            .value_name("PATH")
            .global(true)
            .help(
                "Settings file (TOML). Without it, ./sfsync.toml is read if it exists. Every \
                 other option can be set there too; a flag beats the environment, which beats \
                 the file, which beats the built-in default",
            ),
    )
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

/// The argument a file key names: its id, which is the field name and, but for `--object`
/// (`objects`), the long flag with `_` for `-`. One spelling per setting.
fn find_arg<'c>(cmd: &'c Command, key: &str) -> Option<&'c clap::Arg> {
    cmd.get_arguments().find(|a| {
        let id = a.get_id().as_str();
        id != "config" && !a.is_positional() && a.get_long().is_some() && id == key
    })
}

/// The keys a command's section takes.
fn settable_args(cmd: &Command) -> Vec<String> {
    cmd.get_arguments()
        .filter(|a| {
            !a.is_positional()
                && !matches!(a.get_id().as_str(), "config" | "help" | "version")
                && a.get_long().is_some()
        })
        .map(|a| a.get_id().as_str().to_owned())
        .collect()
}

/// A TOML value as the strings clap would receive on the command line.
fn file_values(arg: &clap::Arg, value: &toml::Value) -> Result<Vec<String>, String> {
    let many = matches!(arg.get_action(), clap::ArgAction::Append)
        || arg.get_num_args().is_some_and(|n| n.max_values() > 1);
    let flag = !arg.get_action().takes_values();
    let scalar = |v: &toml::Value| -> Result<String, String> {
        match v {
            toml::Value::String(s) => Ok(s.clone()),
            toml::Value::Integer(i) => Ok(i.to_string()),
            toml::Value::Float(f) => Ok(f.to_string()),
            toml::Value::Boolean(b) => Ok(b.to_string()),
            toml::Value::Datetime(d) => Ok(d.to_string()),
            other => Err(format!("expected a value, found a {}", other.type_str())),
        }
    };
    match value {
        toml::Value::Boolean(_) if flag => scalar(value).map(|v| vec![v]),
        _ if flag => Err(format!(
            "expected true or false, found a {}",
            value.type_str()
        )),
        toml::Value::Array(items) if many => items.iter().map(scalar).collect(),
        toml::Value::Array(_) => Err("takes one value, not a list".into()),
        toml::Value::String(s) if many => Ok(match arg.get_value_delimiter() {
            Some(d) => s.split(d).map(str::to_owned).collect(),
            None => vec![s.clone()],
        }),
        other => scalar(other).map(|v| vec![v]),
    }
}

/// Why clap refused a value, without clap's framing (which names the flag, not the key).
fn reason_of(e: &clap::Error, value: &toml::Value, secret: bool) -> String {
    use clap::error::{ContextKind, ContextValue};
    if let Some(source) = std::error::Error::source(e) {
        return source.to_string();
    }
    let shown = if secret {
        "the value".to_owned()
    } else {
        match value {
            toml::Value::String(s) => format!("{s:?}"),
            other => other.to_string(),
        }
    };
    if let Some(ContextValue::Strings(valid)) = e.get(ContextKind::ValidValue) {
        return format!("{shown} is not one of {}", valid.join(", "));
    }
    let text = e.to_string();
    let first = text.lines().next().unwrap_or_default();
    format!(
        "{shown} is refused: {}",
        first.trim_start_matches("error: ").trim()
    )
}

#[cfg(test)]
mod tests {
    use clap::{Args, FromArgMatches, Parser};

    use super::*;

    /// A stand-in command with the kinds of arguments sfsync has.
    #[derive(Debug, Parser)]
    #[command(name = "demo")]
    struct Demo {
        #[arg(long, env = "DEMO_PREFETCH_T", default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..))]
        prefetch: u16,
        #[arg(long, default_value = "30s", value_parser = crate::config::parse_duration)]
        timeout: std::time::Duration,
        #[arg(long)]
        hard_delete: bool,
        #[arg(long = "object", value_delimiter = ',')]
        objects: Vec<String>,
        #[command(flatten)]
        extra: Extra,
    }

    #[derive(Debug, Args)]
    struct Extra {
        #[arg(long, env = "DEMO_SECRET_T", hide_env_values = true, value_parser = crate::config::parse_secret)]
        token: Option<secrecy::SecretString>,
    }

    fn parse(argv: &[&str], toml: &str) -> Result<Demo, LoadError> {
        use clap::CommandFactory;
        let file = ConfigFile::parse("sfsync.toml", toml)?;
        let matches = parse_layered(
            Demo::command(),
            argv.iter().map(OsString::from).collect(),
            Some(&file),
            |_| {
                vec![Layer {
                    section: "worker".into(),
                    strict: true,
                }]
            },
        )?;
        Ok(Demo::from_arg_matches(&matches)?)
    }

    fn file_error(argv: &[&str], toml: &str) -> String {
        match parse(argv, toml) {
            Err(LoadError::File(e)) => e.to_string(),
            other => panic!("expected a file error, got {other:?}"),
        }
    }

    #[test]
    fn file_values_fill_what_flags_leave() {
        let d = parse(
            &["demo"],
            "[worker]\nprefetch = 9\ntimeout = \"2m\"\nhard_delete = true\nobjects = [\"Account\", \"Contact\"]",
        )
        .unwrap();
        assert_eq!(d.prefetch, 9);
        assert_eq!(d.timeout, std::time::Duration::from_secs(120));
        assert!(d.hard_delete);
        assert_eq!(d.objects, ["Account", "Contact"]);
        let d = parse(
            &["demo", "--prefetch", "2", "--object", "Lead"],
            "[worker]\nprefetch = 9\nobjects = \"Account,Contact\"",
        )
        .unwrap();
        assert_eq!(d.prefetch, 2);
        assert_eq!(d.objects, ["Lead"]);
        let d = parse(&["demo"], "").unwrap();
        assert_eq!(d.prefetch, 4);
    }

    #[test]
    fn bad_values_name_file_key_and_reason() {
        assert_eq!(
            file_error(&["demo"], "[worker]\nprefetch = 0"),
            "sfsync.toml: worker.prefetch: 0 is not in 1..=65535"
        );
        let e = file_error(&["demo"], "[worker]\ntimeout = \"soon\"");
        assert!(
            e.starts_with("sfsync.toml: worker.timeout: \"soon\" is not a duration"),
            "{e}"
        );
        let e = file_error(&["demo"], "[worker]\nhard_delete = \"yes\"");
        assert_eq!(
            e,
            "sfsync.toml: worker.hard_delete: expected true or false, found a string"
        );
        let e = file_error(&["demo"], "[worker]\nprefetch = [1, 2]");
        assert_eq!(
            e,
            "sfsync.toml: worker.prefetch: takes one value, not a list"
        );
        let e = file_error(&["demo"], "[worker]\nprefech = 3");
        assert!(
            e.starts_with(
                "sfsync.toml: worker.prefech: unknown setting; [worker] takes prefetch, timeout"
            ),
            "{e}"
        );
        let e = file_error(&["demo"], "[worker\nprefetch = 3");
        assert!(
            e.starts_with("sfsync.toml: not valid TOML at line 1, column"),
            "{e}"
        );
    }

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
    fn secrets_from_the_file_stay_out_of_debug_and_help() {
        use clap::CommandFactory;
        use secrecy::ExposeSecret;
        let d = parse(&["demo"], "[worker]\ntoken = \"hunter2\"").unwrap();
        assert_eq!(d.extra.token.as_ref().unwrap().expose_secret(), "hunter2");
        assert!(!format!("{d:?}").contains("hunter2"));
        let file = ConfigFile::parse("sfsync.toml", "[worker]\ntoken = \"hunter2\"").unwrap();
        let Err(LoadError::Clap(help)) = parse_layered(
            Demo::command(),
            vec!["demo".into(), "--help".into()],
            Some(&file),
            |_| {
                vec![Layer {
                    section: "worker".into(),
                    strict: true,
                }]
            },
        ) else {
            panic!("--help is a clap error");
        };
        assert!(!help.to_string().contains("hunter2"));
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
