//! The producer's command line: `sync` pulls objects, `status` reports runs, `dlq` lists,
//! replays and purges dead letters, `reconcile` compares tables with the org and repairs them.
//! Every option can also come from `sfsync.toml` (see [`parse_from`]).

use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand, parser::ValueSource};
use common::{
    config::ServiceArgs,
    config_file::{ConfigError, ConfigFile, Layer, LoadError, parse_layered},
    metrics::MetricsArgs,
};

use crate::{dlq::DlqFilter, objects::ObjectsConfig, salesforce::CredentialArgs};

const AFTER_HELP: &str = "Settings file: every option of a command can also be set in sfsync.toml \
(or the file --config names) by its long name with underscores, in the command's section: \
`page_size = 500` under [sync], `wait = \"20m\"` under [reconcile]; --amqp-url and --database-url \
under [services], the --sf-* options under [salesforce] (keep secrets in the environment or .env \
rather than a file). [sync] objects = [...] and [objects.<Name>] sections (table, include_fields \
or exclude_fields, hard_delete) configure objects; `sync --all` syncs them. A flag beats the \
environment, which beats the file, which beats the default.";

/// sfsync producer: pulls Salesforce objects page by page onto RabbitMQ, where sfsync workers
/// upsert them into PostgreSQL (schema `salesforce`, one table per object).
#[derive(Debug, Parser)]
#[command(name = "producer", version, about, long_about = None, after_help = AFTER_HELP)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// What `<command> --help` says about the settings file, for `[section]`.
macro_rules! file_help {
    ($section:literal) => {
        concat!(
            "Settings file: these options can also be set in sfsync.toml (or the file --config names) \
             under [", $section, "], by their long name with underscores (--an-option is \
             an_option); where a command has them, --sf-* go under [salesforce], --amqp-url and --database-url \
             under [services] (keep secrets in the environment or .env). A flag beats the \
             environment, which beats the file, which beats the default."
        )
    };
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Pull an object's records (all of them the first time or with --full, then what changed)
    /// and publish them; exits 0 only when the broker has confirmed every page. Creates or
    /// extends salesforce.<object> first.
    Sync(SyncArgs),
    /// Show recent runs: pages published, pages processed, records stored and dead-lettered.
    Status(StatusArgs),
    /// Inspect, replay or purge the dead-letter queue (records that could not be stored).
    Dlq(DlqArgs),
    /// Compare a table with the org by Id and SystemModstamp and repair every difference:
    /// re-pull missing and stale records, mark (or with --hard-delete remove) rows the org no
    /// longer has. Exit 0 when the table ends in step, 1 when differences remain.
    Reconcile(ReconcileArgs),
    /// Write back: send the changes the application made to writable tables (objects with
    /// `write` in sfsync.toml) to Salesforce through the workers, and wait until each is
    /// applied or refused. Exit 0 when all were applied, 1 when Salesforce refused some
    /// (their reasons are in sfsync.outbox.error). Workers need the SF_* settings to apply them.
    Push(PushArgs),
}

#[derive(Debug, Args)]
#[command(after_help = file_help!("push"))]
pub struct PushArgs {
    /// Salesforce API name(s) of the object(s) to push; every object with `write` in
    /// sfsync.toml if none is named.
    #[arg(long = "object", value_delimiter = ',')]
    pub objects: Vec<String>,
    /// How long to wait for the workers to apply each round of batches.
    #[arg(long, default_value = "10m", value_parser = common::config::parse_duration)]
    pub wait: std::time::Duration,
    /// Keep pushing: woken by the capture trigger's notification (LISTEN sfsync_outbox) as soon
    /// as the application commits a change, and every --poll-interval in case a notification
    /// was lost. Refused changes are logged and dead-lettered, and the push goes on; a signal
    /// lets the push in progress finish, then exits 0.
    #[arg(long)]
    pub watch: bool,
    /// With --watch: how often to look at the outbox without a notification.
    #[arg(long, default_value = "60s", value_parser = common::config::parse_duration, requires = "watch")]
    pub poll_interval: std::time::Duration,
    #[command(flatten)]
    pub metrics: MetricsArgs,
    /// Stop once the org's API usage reaches this percentage of its daily limit.
    #[arg(long, default_value_t = 80.0, value_parser = common::config::parse_percent)]
    pub max_api_usage: f64,
    #[command(flatten)]
    pub limit_retry: LimitRetryArgs,
    #[command(flatten)]
    pub salesforce: CredentialArgs,
    #[command(flatten)]
    pub services: ServiceArgs,
    /// The `[objects.<Name>]` sections of `sfsync.toml`.
    #[arg(skip)]
    pub object_config: ObjectsConfig,
}

#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("which_objects").required(true).args(["objects", "all"]))]
#[command(after_help = concat!(file_help!("reconcile"), " [objects.<Name>] sections set the table and fields it compares."))]
pub struct ReconcileArgs {
    /// Salesforce API name(s) of the object(s), e.g. Contact or Account,Contact.
    #[arg(long = "object", value_delimiter = ',')]
    pub objects: Vec<String>,
    /// Reconcile every object sfsync.toml configures (as `sync --all` syncs them).
    #[arg(long)]
    pub all: bool,
    /// Only report the differences; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Instead of comparing stamps, bring formula fields up to date: Salesforce computes them
    /// when they are read, so they change without a new SystemModstamp. Re-reads Id,
    /// SystemModstamp and every formula field (one Bulk job with --api bulk: a dozen API calls
    /// whatever the size) and updates those columns of the rows the table has.
    #[arg(long, conflicts_with = "dry_run")]
    pub formulas: bool,
    /// One JSON object per object instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Remove rows the org no longer has instead of marking them isdeleted.
    #[arg(long)]
    pub hard_delete: bool,
    /// How the org's Ids and stamps are read: bulk (Bulk API 2.0, a handful of API calls at any
    /// size) or rest (one call per 2,000 records, as many as a full import).
    #[arg(long, value_enum, default_value = "bulk")]
    pub api: crate::sync::ApiChoice,
    #[command(flatten)]
    pub metrics: MetricsArgs,
    /// How long to wait for the workers to apply the repair before the "after" report.
    #[arg(long, default_value = "10m", value_parser = common::config::parse_duration)]
    pub wait: std::time::Duration,
    /// Stop once the org's API usage reaches this percentage of its daily limit.
    #[arg(long, default_value_t = 80.0, value_parser = common::config::parse_percent)]
    pub max_api_usage: f64,
    #[command(flatten)]
    pub limit_retry: LimitRetryArgs,
    #[command(flatten)]
    pub salesforce: CredentialArgs,
    #[command(flatten)]
    pub services: ServiceArgs,
    /// Table names and fields per object, from `sfsync.toml`'s `[objects.<Name>]` sections.
    #[arg(skip)]
    pub object_config: ObjectsConfig,
}

#[derive(Debug, Args)]
#[command(after_help = file_help!("dlq"))]
pub struct DlqArgs {
    #[command(subcommand)]
    pub command: DlqCommand,
    #[command(flatten)]
    pub services: ServiceArgs,
}

#[derive(Debug, Subcommand)]
pub enum DlqCommand {
    /// Counts by object and error class, then the records (Id, object, class, time, error).
    /// Nothing is removed.
    List {
        #[command(flatten)]
        filter: DlqFilter,
        /// One JSON object per dead letter instead of the table.
        #[arg(long)]
        json: bool,
    },
    /// Move matching dead letters back onto the work queue (after fixing the cause); each is
    /// removed from the DLQ only once the work queue has confirmed it. Prints how many moved.
    Replay {
        #[command(flatten)]
        filter: DlqFilter,
    },
    /// Delete matching dead letters for good. Without --yes, only says how many would go.
    Purge {
        #[command(flatten)]
        filter: DlqFilter,
        /// Really delete them.
        #[arg(long)]
        yes: bool,
    },
}

#[derive(Debug, Args)]
// `multiple`: --all and SFSYNC_OBJECTS may meet (the flag wins); --all with an --object flag is
// refused in parse_from.
#[command(group = clap::ArgGroup::new("which_objects").required(true).multiple(true).args(["objects", "all"]))]
#[command(after_help = concat!(file_help!("sync"), " Per object, [objects.<Name>] sections set `table`, \
`include_fields` or `exclude_fields`, and `hard_delete`; `objects = [...]` under [sync] lists what --all syncs."))]
pub struct SyncArgs {
    /// Salesforce API name(s) of the object(s), e.g. Contact or Account,Contact or
    /// My_Object__c. Objects are synced one after the other. (In sfsync.toml, `objects` under
    /// [sync] is the list --all syncs, not a default for this option.)
    #[arg(long = "object", env = "SFSYNC_OBJECTS", value_delimiter = ',')]
    pub objects: Vec<String>,
    /// Sync every object sfsync.toml configures: `objects = [...]` under [sync], then each
    /// [objects.<Name>] section, in file order. Not with --object (it beats SFSYNC_OBJECTS).
    #[arg(long)]
    pub all: bool,
    /// Read every record, even when an earlier sync left a watermark. Without it, a sync
    /// reads only what changed since the watermark (minus --overlap).
    #[arg(long, env = "SFSYNC_FULL")]
    pub full: bool,
    /// How far behind the watermark an incremental sync starts reading, so records sharing a
    /// timestamp or committed late are not missed. Re-reading them is harmless.
    #[arg(long, env = "SFSYNC_OVERLAP", default_value = "5m", value_parser = common::config::parse_duration)]
    pub overlap: std::time::Duration,
    /// Delete the rows of records deleted in Salesforce instead of setting isdeleted = true.
    /// (A replay of a page older than the deletion can bring such a row back until the next
    /// sync.) Per object in sfsync.toml: `hard_delete` under [objects.<Name>].
    #[arg(long, env = "SFSYNC_HARD_DELETE")]
    pub hard_delete: bool,
    /// Keep syncing: an incremental sync of every object each --interval, until SIGTERM or
    /// Ctrl-C (the sync in progress is finished first; exit 0).
    #[arg(long, env = "SFSYNC_WATCH")]
    pub watch: bool,
    /// Pause between syncs in --watch mode.
    #[arg(long, env = "SFSYNC_WATCH_INTERVAL", default_value = "30s", value_parser = common::config::parse_duration)]
    pub interval: std::time::Duration,
    /// With --watch: how long an object's describe is reused before it is read again (a pass
    /// that fails reads it again at once, as after a field was deleted in the org).
    #[arg(long, env = "SFSYNC_DESCRIBE_INTERVAL", default_value = "15m", value_parser = common::config::parse_duration)]
    pub describe_interval: std::time::Duration,
    /// With --watch: how often each object's deletions are asked for (getDeleted, or comparing
    /// Ids where it cannot answer); the passes between read changed records only, and the next
    /// check covers everything since the last.
    #[arg(long, env = "SFSYNC_DELETED_INTERVAL", default_value = "5m", value_parser = common::config::parse_duration)]
    pub deleted_interval: std::time::Duration,
    /// With --watch: runs (sfsync.runs) and their page results finished longer ago are
    /// deleted, hourly; each object keeps its latest run, and dead letters are never pruned.
    #[arg(long, env = "SFSYNC_RETENTION", default_value = "14d", value_parser = common::config::parse_duration)]
    pub retention: std::time::Duration,
    /// In --watch mode, also re-read the formula fields of each object that has them, at most
    /// this often (e.g. 1h): Salesforce computes formulas when they are read, so their values
    /// change without a new SystemModstamp and incremental syncs miss them. A refresh costs one
    /// Bulk job per object (a dozen API calls whatever its size; REST for small tables with
    /// --api auto); objects without formula fields cost nothing. Off unless set.
    #[arg(long, env = "SFSYNC_FORMULA_REFRESH", value_parser = common::config::parse_duration)]
    pub formula_refresh: Option<std::time::Duration>,
    /// Stop (with an error) once the org's API usage, as Salesforce reports it, reaches this
    /// percentage of its daily limit, leaving the rest to other integrations. 100 disables it.
    #[arg(long, env = "SFSYNC_MAX_API_USAGE", default_value_t = 80.0, value_parser = common::config::parse_percent)]
    pub max_api_usage: f64,
    /// Which Salesforce API reads the records: rest, bulk (Bulk API 2.0) or auto (Bulk above
    /// --bulk-threshold records, counted first with one COUNT() query).
    #[arg(long, env = "SFSYNC_API", value_enum, default_value = "auto")]
    pub api: crate::sync::ApiChoice,
    /// With --api auto, use Bulk when a sync reads more records than this.
    #[arg(long, env = "SFSYNC_BULK_THRESHOLD", default_value_t = 100_000)]
    pub bulk_threshold: u64,
    /// Slices of a big REST read fetched at once: cursors over consecutive stretches of
    /// SystemModstamp holding about as many records each, so that a real org's hundreds of
    /// milliseconds per call are waited out side by side. A big Bulk job downloads its result
    /// chunks at once instead, at most four (`resultPages`). Salesforce runs at most 25 long
    /// requests per org at once, for every integration together; 1 reads one page (or chunk)
    /// after the other.
    #[arg(long, env = "SFSYNC_PARALLEL", default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=12))]
    pub parallel: u16,
    /// A read of more records than this is cut into --parallel slices, or through Bulk
    /// downloads its chunks at once (a full import, or a long incremental window); smaller
    /// reads go one page after the other.
    #[arg(long, env = "SFSYNC_PARALLEL_ABOVE", default_value_t = 10_000)]
    pub parallel_above: u64,
    /// Read at once only when a call to the org takes at least this long (measured on one
    /// `GET /services/data/`, which counts against no limit): against a nearby org the reading
    /// is not what waits, and slices only add calls and memory. 0 always reads at once.
    #[arg(long, env = "SFSYNC_PARALLEL_MIN_LATENCY", default_value = "100ms", value_parser = common::config::parse_duration)]
    pub parallel_min_latency: std::time::Duration,
    /// Records per page asked of Salesforce (200–2000), the batch size: one page becomes one
    /// message, stored by a worker in one statement.
    #[arg(long, env = "SFSYNC_PAGE_SIZE", default_value_t = 2000, value_parser = clap::value_parser!(u32).range(200..=2000))]
    pub page_size: u32,
    /// Pages published but not yet confirmed by the broker, at most. Higher overlaps more
    /// round trips; memory is about this many pages.
    #[arg(long, env = "SFSYNC_CONFIRM_WINDOW", default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub confirm_window: u32,
    /// How long the broker may take to confirm a page before it counts as not published (the
    /// sync then reconnects and reads on from the watermark). Time during which RabbitMQ blocks
    /// publishing, because a node is low on memory or disk, does not count: the sync waits.
    #[arg(long, env = "SFSYNC_CONFIRM_TIMEOUT", default_value = "120s", value_parser = common::config::parse_duration)]
    pub confirm_timeout: std::time::Duration,
    /// Never draw a progress bar (it is drawn only on a terminal anyway).
    #[arg(long, env = "SFSYNC_NO_PROGRESS")]
    pub no_progress: bool,
    #[command(flatten)]
    pub limit_retry: LimitRetryArgs,
    #[command(flatten)]
    pub metrics: MetricsArgs,
    #[command(flatten)]
    pub salesforce: CredentialArgs,
    #[command(flatten)]
    pub services: ServiceArgs,
    /// Table names, fields and hard delete per object, from `sfsync.toml`'s
    /// `[objects.<Name>]` sections.
    #[arg(skip)]
    pub object_config: ObjectsConfig,
}

/// How long a call Salesforce refuses with 403 `REQUEST_LIMIT_EXCEEDED` is retried. (Network
/// failures, 5xx, 429 and garbled bodies are retried separately: 6 times from 0.5 s.)
#[derive(Debug, Clone, Args)]
pub struct LimitRetryArgs {
    /// Retries of a call refused with 403 REQUEST_LIMIT_EXCEEDED (the org's API or
    /// concurrent-request limit) before the run fails; 0 fails at once.
    #[arg(long, env = "SF_LIMIT_RETRIES", default_value_t = 3)]
    pub sf_limit_retries: usize,
    /// The first pause before such a retry; each further one doubles (at most 5m), jittered.
    #[arg(long, env = "SF_LIMIT_BACKOFF", default_value = "30s", value_parser = common::config::parse_duration)]
    pub sf_limit_backoff: std::time::Duration,
}

impl Default for LimitRetryArgs {
    fn default() -> Self {
        let policy = crate::salesforce::RetryPolicy::default();
        Self {
            sf_limit_retries: policy.limit_max_retries,
            sf_limit_backoff: policy.limit_min_delay,
        }
    }
}

impl LimitRetryArgs {
    /// The client's retry policy with these limits.
    pub fn policy(&self) -> crate::salesforce::RetryPolicy {
        crate::salesforce::RetryPolicy {
            limit_max_retries: self.sf_limit_retries,
            limit_min_delay: self.sf_limit_backoff,
            ..crate::salesforce::RetryPolicy::default()
        }
    }
}

#[derive(Debug, Args)]
#[command(after_help = file_help!("status"))]
pub struct StatusArgs {
    /// How many runs to show, newest first.
    #[arg(long, default_value_t = 20)]
    pub limit: i64,
    /// Print JSON lines instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Keep refreshing: records/s and ETA per run, and the broker's queue depths.
    #[arg(long, conflicts_with = "json")]
    pub watch: bool,
    /// Refresh period with --watch.
    #[arg(long, default_value = "2s", value_parser = common::config::parse_duration)]
    pub interval: std::time::Duration,
    #[command(flatten)]
    pub services: ServiceArgs,
}

/// Producer arguments from `argv`, the environment and the settings file, in that precedence:
/// a command's own section (`[sync]`, `[reconcile]`, `[status]`, `[dlq]`) over the shared
/// `[salesforce]` and `[services]`; `[objects.*]` and `[sync] objects` for per-object
/// settings and `--all`. A worker's `[worker]` section is left to the worker.
///
/// # Errors
/// A usage error (or `--help`), or a settings file that is missing, malformed or holds a bad
/// value; the message names the setting.
pub fn parse_from(argv: Vec<std::ffi::OsString>) -> Result<Cli, LoadError> {
    let cmd = Cli::command();
    let mut objects = ObjectsConfig::default();
    let file = match ConfigFile::find(&argv)? {
        Some(mut file) => {
            file.check_sections()?;
            file.check_keys(
                "services",
                &ServiceArgs::augment_args(clap::Command::new("services")),
            )?;
            file.check_keys(
                "salesforce",
                &CredentialArgs::augment_args(clap::Command::new("salesforce")),
            )?;
            objects = ObjectsConfig::from_file(&file)?;
            if file
                .section("reconcile")
                .is_some_and(|r| r.contains_key("objects"))
            {
                return Err(ConfigError::Setting {
                    path: file.path.clone(),
                    key: "reconcile.objects".into(),
                    reason: "the configured objects are `objects` under [sync]; `reconcile --all` reconciles them".into(),
                }
                .into());
            }
            // `[sync] objects` is the list for --all, not a default for --object.
            if let Some(sync) = file.doc.get_mut("sync").and_then(|s| s.as_table_mut()) {
                sync.remove("objects");
            }
            for sub in cmd.get_subcommands() {
                file.check_keys(sub.get_name(), sub)?;
            }
            Some(file)
        }
        None => None,
    };
    let matches = parse_layered(cmd, argv, file.as_ref(), |sub| {
        sub.map(|name| {
            vec![
                Layer {
                    section: "services".into(),
                    strict: false,
                },
                Layer {
                    section: "salesforce".into(),
                    strict: false,
                },
                Layer {
                    section: name.into(),
                    strict: true,
                },
            ]
        })
        .unwrap_or_default()
    })?;
    let mut cli = Cli::from_arg_matches(&matches)?;
    // Only sync and reconcile have --hard-delete (asking others would panic in debug builds).
    let explicit = |id: &str| {
        matches.subcommand().is_some_and(|(name, m)| {
            matches!(name, "sync" | "reconcile")
                && matches!(
                    m.value_source(id),
                    Some(ValueSource::CommandLine | ValueSource::EnvVariable)
                )
        })
    };
    if explicit("hard_delete") {
        objects.override_hard_delete();
    }
    let configured = |all: bool, given: &mut Vec<String>| -> Result<(), LoadError> {
        if all {
            if matches
                .subcommand()
                .is_some_and(|(_, m)| m.value_source("objects") == Some(ValueSource::CommandLine))
            {
                return Err(clap::Error::raw(
                    clap::error::ErrorKind::ArgumentConflict,
                    "the argument '--all' cannot be used with '--object <OBJECTS>'\n",
                )
                .into());
            }
            *given = objects.all_objects();
            if given.is_empty() {
                return Err(LoadError::File(ConfigError::Invalid(format!(
                    "--all: {} configures no object; list them as `objects = [\"Account\", \"Contact\"]` under [sync] or add [objects.<Name>] sections",
                    file.as_ref().map_or(
                        "no settings file was found (./sfsync.toml or --config), so nothing"
                            .to_owned(),
                        |f| f.path.clone()
                    )
                ))));
            }
        }
        Ok(())
    };
    match &mut cli.command {
        Command::Sync(args) => {
            configured(args.all, &mut args.objects)?;
            args.object_config = objects;
        }
        Command::Reconcile(args) => {
            configured(args.all, &mut args.objects)?;
            args.object_config = objects;
        }
        Command::Push(args) => {
            if args.objects.is_empty() {
                args.objects = objects.writable_objects();
            }
            if args.objects.is_empty() {
                return Err(LoadError::File(ConfigError::Invalid(
                    "push: no object has `write` in sfsync.toml; add `write = [\"Field__c\"]` to an [objects.<Name>] section, or name objects with --object".into(),
                )));
            }
            args.object_config = objects;
        }
        Command::Status(_) | Command::Dlq(_) => {}
    }
    Ok(cli)
}

#[cfg(test)]
mod tests {
    use std::ffi::OsString;

    use super::*;

    /// Parses `args` with `toml` as the file named by --config (a file private to the test).
    fn parse(name: &str, args: &[&str], toml: &str) -> Result<Cli, String> {
        let path =
            std::env::temp_dir().join(format!("sfsync-cli-{name}-{}.toml", std::process::id()));
        std::fs::write(&path, toml).unwrap();
        let mut argv: Vec<OsString> = vec!["producer".into()];
        argv.extend(args.iter().map(OsString::from));
        argv.extend(["--config".into(), path.clone().into()]);
        let result = parse_from(argv).map_err(|e| match e {
            LoadError::File(e) => e.to_string().replace(&path.display().to_string(), "FILE"),
            LoadError::Clap(e) => e.to_string(),
        });
        let _ = std::fs::remove_file(&path);
        result
    }

    fn sync(cli: Cli) -> SyncArgs {
        match cli.command {
            Command::Sync(args) => args,
            other => panic!("not sync: {other:?}"),
        }
    }

    #[test]
    fn the_example_file_is_valid_for_every_command() {
        let example = include_str!("../../sfsync.example.toml");
        let args = sync(parse("example", &["sync", "--all"], example).unwrap());
        assert_eq!(args.objects, ["Account", "Contact"]);
        assert_eq!(args.page_size, 2000);
        assert_eq!(
            args.object_config.settings("Contact").table("Contact"),
            "contacts"
        );
        assert_eq!(
            args.salesforce.sf_login_url.as_deref(),
            Some("https://mycompany.my.salesforce.com")
        );
        for command in [&["reconcile", "--all"][..], &["status"], &["dlq", "list"]] {
            parse("example", command, example).unwrap();
        }
    }

    #[test]
    fn a_command_section_beats_a_shared_one_and_flags_beat_both() {
        let toml = "[services]\ndatabase_url = \"postgres://shared@h/db\"\n[status]\ndatabase_url = \"postgres://status@h/db\"\n[sync]\npage_size = 500\nhard_delete = false\n[objects.Contact]\nhard_delete = true\n";
        use secrecy::ExposeSecret;
        let Command::Status(status) = parse("layers", &["status"], toml).unwrap().command else {
            panic!()
        };
        assert_eq!(
            status.services.database_url.expose_secret(),
            "postgres://status@h/db"
        );
        let args = sync(parse("layers", &["sync", "--object", "Contact"], toml).unwrap());
        assert_eq!(
            args.services.database_url.expose_secret(),
            "postgres://shared@h/db"
        );
        assert_eq!(args.page_size, 500);
        assert_eq!(
            args.object_config.settings("Contact").hard_delete,
            Some(true)
        );
        let args = sync(
            parse(
                "layers",
                &[
                    "sync",
                    "--object",
                    "Contact",
                    "--page-size",
                    "300",
                    "--hard-delete",
                ],
                toml,
            )
            .unwrap(),
        );
        assert_eq!(args.page_size, 300);
        // The flag beats the object's setting too.
        assert!(args.hard_delete);
        assert_eq!(args.object_config.settings("Contact").hard_delete, None);
    }

    #[test]
    fn errors_name_the_setting() {
        for (args, toml, want) in [
            (
                &["sync", "--all"][..],
                "[sync]\npage_size = 100",
                "FILE: sync.page_size: 100 is not in 200..=2000",
            ),
            (
                &["sync", "--all"],
                "[sync]\nobjects = [\"Contact\"]\nmax_api_usage = 150",
                "FILE: sync.max_api_usage: \"150\" is not a percentage between 1 and 100",
            ),
            (
                &["status"],
                "[reconcile]\nwiat = \"1m\"",
                "FILE: reconcile.wiat: unknown setting; [reconcile] takes objects, all, dry_run",
            ),
            (
                &["status"],
                "[salesforce]\nsf_login = \"x\"",
                "FILE: salesforce.sf_login: unknown setting",
            ),
            (
                &["sync", "--all"],
                "[sync]\npage_size = 500",
                "--all: FILE configures no object",
            ),
            (
                &["status"],
                "[sync]\nobject = \"Contact\"",
                "FILE: sync.object: unknown setting",
            ),
            (
                &["status"],
                "[reconcile]\nobjects = [\"Contact\"]",
                "FILE: reconcile.objects: the configured objects are `objects` under [sync]",
            ),
            (
                &["sync", "--all", "--object", "Lead"],
                "[sync]\nobjects = [\"Contact\"]",
                "error: the argument '--all' cannot be used with '--object <OBJECTS>'",
            ),
        ] {
            let e = parse("errors", args, toml).unwrap_err();
            assert!(e.starts_with(want), "{args:?} {toml}:\n{e}\nwanted {want}");
        }
    }
}
