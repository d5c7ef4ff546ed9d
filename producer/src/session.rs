//! What the `sync` and `reconcile` commands connect to once and reuse for every object and
//! every `--watch` pass: Salesforce, PostgreSQL, the broker, and the `/metrics` endpoint.

use std::sync::Arc;

use common::{
    config::ServiceArgs,
    metrics::{MetricsListener, MetricsServer},
};
use tokio_util::sync::CancellationToken;

use common::health::Health;

use crate::{
    broker::Broker,
    cli::{PushArgs, ReconcileArgs, SyncArgs},
    metrics::ProducerMetrics,
    objects::{self, ObjectsConfig},
    salesforce::{CredentialArgs, Credentials, RetryPolicy, SalesforceClient},
    sync::{self, BulkRefusals, DescribeCache, SyncOptions, SyncReport},
};

/// `/readyz`'s check of the database: connected and migrated.
const DATABASE: &str = "database";
/// `/readyz`'s check of the broker: connected (failing while a lost connection is replaced).
pub const BROKER: &str = "broker";

/// What opening a session reads from a command's flags; `sync` and `reconcile` share them.
pub struct SessionSettings<'a> {
    pub objects: &'a [String],
    pub object_config: &'a ObjectsConfig,
    pub salesforce: &'a CredentialArgs,
    pub services: &'a ServiceArgs,
    /// Percent of the org's daily API limit past which calls stop; 100 or more never stops.
    pub max_api_usage: f64,
    pub retry: RetryPolicy,
}

/// `sync` and `reconcile` name these flags alike, so one body builds the settings from either.
macro_rules! settings_from {
    ($($args:ty),+) => {$(
        impl<'a> From<&'a $args> for SessionSettings<'a> {
            fn from(args: &'a $args) -> Self {
                Self {
                    objects: &args.objects,
                    object_config: &args.object_config,
                    salesforce: &args.salesforce,
                    services: &args.services,
                    max_api_usage: args.max_api_usage,
                    retry: args.limit_retry.policy(),
                }
            }
        }
    )+};
}

settings_from!(SyncArgs, ReconcileArgs, PushArgs);

/// The connections a command works with, open until [`close`](Self::close).
pub struct Session {
    pub sf: SalesforceClient,
    pub pool: sqlx::PgPool,
    pub broker: Broker,
    /// Objects the Bulk API refused: read through REST for the rest of the session.
    pub bulk_refusals: BulkRefusals,
    /// Describes reused between the passes of `sync --watch`.
    pub describes: DescribeCache,
    /// `/metrics`, served while the session is open.
    _metrics_server: Option<MetricsServer>,
}

impl Session {
    /// Checks the objects, starts serving metrics (the callers bind the address first, so a
    /// bad one fails before any connection), then connects to the database, the broker and
    /// Salesforce.
    ///
    /// # Errors
    /// An object name or a setting is wrong, or a service is unreachable.
    pub async fn open(
        settings: SessionSettings<'_>,
        listener: Option<MetricsListener>,
    ) -> anyhow::Result<Self> {
        let SessionSettings {
            objects,
            object_config,
            salesforce,
            services,
            max_api_usage,
            retry,
        } = settings;
        for object in objects {
            common::schema::check_api_name("object", object)
                .map_err(|e| anyhow::anyhow!("--object: {e}"))?;
        }
        let credentials = Credentials::from_args(salesforce)?;
        let metrics = Arc::new(ProducerMetrics::new());
        let health = Arc::new(Health::new(&[DATABASE, BROKER]));
        let metrics_server = common::metrics::serve(listener, metrics.clone(), health.clone());
        let pool = common::db::connect_control(&services.database_url).await?;
        common::db::migrate(&pool).await?;
        health.pass(DATABASE);
        let broker = Broker::open(&services.amqp_url, metrics.broker_blocked(), health).await?;
        let max_usage = (max_api_usage < 100.0).then_some(max_api_usage);
        let sf = SalesforceClient::connect(credentials, &salesforce.sf_api_version, retry)
            .await?
            .with_max_api_usage(max_usage)
            .with_metrics(metrics);
        if object_config.has_field_filters(objects) {
            objects::check_fields_against_org(&sf, object_config, objects).await?;
        }
        Ok(Self {
            sf,
            pool,
            broker,
            bulk_refusals: BulkRefusals::default(),
            describes: DescribeCache::default(),
            _metrics_server: metrics_server,
        })
    }

    /// Syncs one object; a sync that lost the broker is run again on a new connection (see
    /// [`Broker::with_reconnects`]).
    ///
    /// # Errors
    /// As for [`sync::sync_object`], once the broker retries are spent.
    pub async fn sync(
        &mut self,
        options: &SyncOptions,
        cancel: &CancellationToken,
    ) -> anyhow::Result<SyncReport> {
        let (sf, pool, refusals, describes) =
            (&self.sf, &self.pool, &self.bulk_refusals, &self.describes);
        let synced = self
            .broker
            .with_reconnects(&options.object, sf.metrics(), cancel, |channel| {
                sync::sync_object(sf, pool, channel, options, refusals, describes, cancel)
            })
            .await;
        if synced.is_err() {
            // A field the org no longer has, say: the next sync describes again.
            describes.forget(&options.object);
        }
        synced
    }

    pub async fn close(self) {
        self.broker.close().await;
        self.pool.close().await;
    }
}
