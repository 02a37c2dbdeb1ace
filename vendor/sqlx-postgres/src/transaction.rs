use sqlx_core::database::Database;
use sqlx_core::sql_str::SqlStr;

use crate::error::Error;
use crate::executor::{Execute, Executor};

use crate::{PgConnection, PgRow, Postgres};

pub(crate) use sqlx_core::transaction::*;

/// Implementation of [`TransactionManager`] for PostgreSQL.
pub struct PgTransactionManager;

impl TransactionManager for PgTransactionManager {
    type Database = Postgres;

    async fn begin(conn: &mut PgConnection, statement: Option<SqlStr>) -> Result<(), Error> {
        let depth = conn.inner.transaction_depth;

        let statement = match statement {
            // custom `BEGIN` statements are not allowed if we're already in
            // a transaction (we need to issue a `SAVEPOINT` instead)
            Some(_) if depth > 0 => return Err(Error::InvalidSavePointStatement),
            Some(statement) => statement,
            None => begin_ansi_transaction_sql(depth),
        };

        let rollback = Rollback::new(conn);
        rollback.conn.queue_simple_query(statement.as_str())?;
        rollback.conn.wait_until_ready().await?;
        if !rollback.conn.in_transaction() {
            return Err(Error::BeginFailed);
        }
        rollback.conn.inner.transaction_depth += 1;
        rollback.defuse();

        Ok(())
    }

    async fn commit(conn: &mut PgConnection) -> Result<(), Error> {
        if conn.inner.transaction_depth > 0 {
            conn.execute(commit_ansi_transaction_sql(conn.inner.transaction_depth))
                .await?;

            conn.inner.transaction_depth -= 1;
        }

        Ok(())
    }

    async fn rollback(conn: &mut PgConnection) -> Result<(), Error> {
        if conn.inner.transaction_depth > 0 {
            conn.execute(rollback_ansi_transaction_sql(conn.inner.transaction_depth))
                .await?;

            conn.inner.transaction_depth -= 1;
        }

        Ok(())
    }

    fn start_rollback(conn: &mut PgConnection) {
        if conn.inner.transaction_depth > 0 {
            conn.queue_simple_query(
                rollback_ansi_transaction_sql(conn.inner.transaction_depth).as_str(),
            )
            .expect("BUG: Rollback query somehow too large for protocol");

            conn.inner.transaction_depth -= 1;
        }
    }

    fn get_transaction_depth(conn: &<Self::Database as Database>::Connection) -> usize {
        conn.inner.transaction_depth
    }
}

/// Custos addition (not upstream; see vendor/README.md).
impl PgConnection {
    /// Opens a transaction and runs `queries` in it, all in **one round trip**: `BEGIN` and
    /// the queries go as one pipeline ([`PgConnection::fetch_pipeline`]), and the rows of each
    /// query come back in order. On success the transaction is left open and counted as sqlx
    /// counts the ones it begins, so wrap the connection with `Transaction::adopt` to commit
    /// or roll it back. If any query fails, or this future is dropped before the answer is
    /// read, a `ROLLBACK` is queued (sent before the connection's next use, or when it goes
    /// back to a pool) and nothing stays open.
    pub async fn begin_pipeline<'q, E>(
        &mut self,
        queries: impl IntoIterator<Item = E>,
    ) -> Result<Vec<Vec<PgRow>>, Error>
    where
        E: Execute<'q, Postgres>,
    {
        if self.inner.transaction_depth > 0 {
            return Err(Error::InvalidSavePointStatement);
        }
        let rollback = Rollback::new(self);
        let results = rollback.conn.run_pipeline(true, queries).await?;
        if !rollback.conn.in_transaction() {
            return Err(Error::BeginFailed);
        }
        rollback.conn.inner.transaction_depth += 1;
        rollback.defuse();
        Ok(results)
    }
}

struct Rollback<'c> {
    conn: &'c mut PgConnection,
    defuse: bool,
}

impl Drop for Rollback<'_> {
    fn drop(&mut self) {
        if self.defuse {
            return;
        }
        if self.conn.inner.transaction_depth == 0 {
            // custos patch (upstream transact-rs/sqlx#4393, fixed by #4394 after 0.9.0): the
            // outermost BEGIN was queued, and may have run, but its reply was never confirmed
            // (the future was cancelled, or BEGIN failed). `start_rollback` does nothing at
            // depth 0, which let the connection go back to the pool inside a transaction.
            // End any such block; outside one, PostgreSQL only warns.
            let _ = self.conn.queue_simple_query("ROLLBACK");
        } else {
            PgTransactionManager::start_rollback(self.conn)
        }
    }
}

impl<'c> Rollback<'c> {
    fn new(conn: &'c mut PgConnection) -> Self {
        Self {
            conn,
            defuse: false,
        }
    }
    fn defuse(mut self) {
        self.defuse = true;
    }
}
