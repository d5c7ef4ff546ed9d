//! Turning the settings file's sections into clap defaults: [`parse_layered`] and the helpers
//! that map a file key to its argument and a TOML value to the strings clap would receive.
//!
//! The file is read and its sections checked in the parent module; this one only applies
//! values, so a flag or environment variable always wins and the argument's own value parser
//! judges what the file says.

use std::ffi::OsString;

use clap::{ArgMatches, Command, parser::ValueSource};

use super::{CONFIG_ENV, ConfigFile, LoadError};

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

/// The argument a file key names: its id, which is the field name and, but for `--object`
/// (`objects`), the long flag with `_` for `-`. One spelling per setting.
pub(super) fn find_arg<'c>(cmd: &'c Command, key: &str) -> Option<&'c clap::Arg> {
    cmd.get_arguments().find(|a| {
        let id = a.get_id().as_str();
        id != "config" && !a.is_positional() && a.get_long().is_some() && id == key
    })
}

/// The keys a command's section takes.
pub(super) fn settable_args(cmd: &Command) -> Vec<String> {
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
}
