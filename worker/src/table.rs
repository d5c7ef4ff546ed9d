//! The shape of a target table as PostgreSQL has it, cached per object. The worker maps record
//! values by the *table's* column types, so a user who widens or retypes a column changes the
//! mapping without touching sfsync.

use std::{collections::HashMap, sync::Arc};

use common::schema::TARGET_SCHEMA;
use tokio::sync::RwLock;

use crate::error::{ErrorClass, PageError};

/// A column sfsync writes: its name and its type without modifiers (`character varying`, not
/// `character varying(18)`: an explicit cast to `varchar(18)` would silently truncate, while
/// the assignment to the column refuses an over-long value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    pub name: String,
    pub base_type: String,
}

#[derive(Debug, Clone)]
pub struct TableShape {
    /// Columns by name; sfsync's own `_sfsync_*` columns and the local `id` are left out.
    pub columns: HashMap<String, Column>,
}

/// Table shapes by table name, loaded on first use and reloaded when a page names a field the
/// cached shape lacks (the producer adds columns for new fields before publishing).
#[derive(Default)]
pub struct TableShapes {
    cache: RwLock<HashMap<String, Arc<TableShape>>>,
}

impl TableShapes {
    /// The shape of `salesforce.<table>`, which holds `object`'s records.
    pub async fn get(
        &self,
        client: &deadpool_postgres::Client,
        table: &str,
        object: &str,
    ) -> Result<Arc<TableShape>, PageError> {
        if let Some(shape) = self.cache.read().await.get(table) {
            return Ok(shape.clone());
        }
        self.reload(client, table, object).await
    }

    pub async fn reload(
        &self,
        client: &deadpool_postgres::Client,
        table: &str,
        object: &str,
    ) -> Result<Arc<TableShape>, PageError> {
        let rows = client
            .query(
                "SELECT a.attname::text, format_type(a.atttypid, NULL)
                   FROM pg_attribute a
                   JOIN pg_class c ON c.oid = a.attrelid
                   JOIN pg_namespace n ON n.oid = c.relnamespace
                  WHERE n.nspname = $1 AND c.relname = $2 AND a.attnum > 0 AND NOT a.attisdropped",
                &[&TARGET_SCHEMA, &table],
            )
            .await?;
        if rows.is_empty() {
            return Err(PageError::permanent(
                ErrorClass::Schema,
                format!(
                    "table {TARGET_SCHEMA}.{table} does not exist; run `producer sync --object {object}` (it creates the table) and replay"
                ),
            ));
        }
        let columns = rows
            .iter()
            .map(|r| Column {
                name: r.get(0),
                base_type: r.get(1),
            })
            .filter(|c| c.name != "id" && !c.name.starts_with("_sfsync_"))
            .map(|c| (c.name.clone(), c))
            .collect();
        let shape = Arc::new(TableShape { columns });
        self.cache
            .write()
            .await
            .insert(table.to_owned(), shape.clone());
        Ok(shape)
    }
}
