//! The queries behind `Store`, written once with `$N` placeholders that SQLite and PostgreSQL both accept,
//! and stamped onto each backend by [`impl_store!`]. Times are Unix milliseconds in BIGINT columns.

/// Implements `exai_core::store::Store` for a type with a `pool` field of a sqlx pool and a `location()`.
macro_rules! impl_store {
    ($store:ty, $backend:literal) => {
        impl exai_core::store::Store for $store {
            fn ping(&self) -> BoxFuture<'_, Result<StoreHealth, StoreError>> {
                async move {
                    let version: Option<i64> =
                        sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations WHERE success = TRUE")
                            .fetch_one(&self.pool)
                            .await
                            .map_err(query_err)?;
                    Ok(StoreHealth { backend: $backend, location: self.location(), schema_version: version.unwrap_or(0) })
                }
                .boxed()
            }

            fn record_start(&self, version: &str, transport: &str) -> BoxFuture<'_, Result<(), StoreError>> {
                let (version, transport) = (version.to_owned(), transport.to_owned());
                async move {
                    sqlx::query("INSERT INTO server_starts (version, transport) VALUES ($1, $2)")
                        .bind(version)
                        .bind(transport)
                        .execute(&self.pool)
                        .await
                        .map_err(query_err)?;
                    Ok(())
                }
                .boxed()
            }

            fn append_turns<'a>(
                &'a self,
                conversation_id: &'a str,
                turns: &'a [Turn],
                expires_at_ms: i64,
                max_turns: usize,
            ) -> BoxFuture<'a, Result<(), StoreError>> {
                async move {
                    let now = turns.last().map_or(0, |t| t.created_at_ms);
                    let mut tx = self.pool.begin().await.map_err(query_err)?;
                    sqlx::query(
                        "INSERT INTO conversations (id, created_at_ms, updated_at_ms, expires_at_ms) \
                         VALUES ($1, $2, $2, $3) ON CONFLICT (id) DO UPDATE \
                         SET updated_at_ms = excluded.updated_at_ms, expires_at_ms = excluded.expires_at_ms",
                    )
                    .bind(conversation_id)
                    .bind(now)
                    .bind(expires_at_ms)
                    .execute(&mut *tx)
                    .await
                    .map_err(query_err)?;
                    let last: i64 =
                        sqlx::query_scalar("SELECT COALESCE(MAX(seq), 0) FROM messages WHERE conversation_id = $1")
                            .bind(conversation_id)
                            .fetch_one(&mut *tx)
                            .await
                            .map_err(query_err)?;
                    for (i, turn) in turns.iter().enumerate() {
                        let files = serde_json::to_string(&turn.files).map_err(|e| StoreError::Query(e.to_string()))?;
                        sqlx::query(
                            "INSERT INTO messages \
                             (conversation_id, seq, role, content, files, tool, provider, model, created_at_ms) \
                             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                        )
                        .bind(conversation_id)
                        .bind(last + 1 + i as i64)
                        .bind(role_name(turn.role))
                        .bind(&turn.content)
                        .bind(files)
                        .bind(&turn.tool)
                        .bind(turn.provider.as_deref())
                        .bind(turn.model.as_deref())
                        .bind(turn.created_at_ms)
                        .execute(&mut *tx)
                        .await
                        .map_err(query_err)?;
                    }
                    let newest = last + turns.len() as i64;
                    sqlx::query("DELETE FROM messages WHERE conversation_id = $1 AND seq <= $2")
                        .bind(conversation_id)
                        .bind(newest - max_turns as i64)
                        .execute(&mut *tx)
                        .await
                        .map_err(query_err)?;
                    tx.commit().await.map_err(query_err)
                }
                .boxed()
            }

            fn conversation<'a>(
                &'a self,
                conversation_id: &'a str,
            ) -> BoxFuture<'a, Result<Option<Conversation>, StoreError>> {
                async move {
                    let row: Option<(String, i64, i64, i64)> = sqlx::query_as(
                        "SELECT id, created_at_ms, updated_at_ms, expires_at_ms FROM conversations WHERE id = $1",
                    )
                    .bind(conversation_id)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(query_err)?;
                    let Some((id, created_at_ms, updated_at_ms, expires_at_ms)) = row else {
                        return Ok(None);
                    };
                    type Row = (String, String, String, String, Option<String>, Option<String>, i64);
                    let rows: Vec<Row> = sqlx::query_as(
                        "SELECT role, content, files, tool, provider, model, created_at_ms \
                         FROM messages WHERE conversation_id = $1 ORDER BY seq",
                    )
                    .bind(conversation_id)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(query_err)?;
                    let turns = rows
                        .into_iter()
                        .map(|(role, content, files, tool, provider, model, created_at_ms)| {
                            Ok(Turn {
                                role: parse_role(&role)?,
                                content,
                                files: serde_json::from_str(&files).map_err(|e| StoreError::Query(e.to_string()))?,
                                tool,
                                provider,
                                model,
                                created_at_ms,
                            })
                        })
                        .collect::<Result<Vec<_>, StoreError>>()?;
                    Ok(Some(Conversation { id, created_at_ms, updated_at_ms, expires_at_ms, turns }))
                }
                .boxed()
            }

            fn purge_expired(&self, now_ms: i64) -> BoxFuture<'_, Result<u64, StoreError>> {
                async move {
                    let done = sqlx::query("DELETE FROM conversations WHERE expires_at_ms < $1")
                        .bind(now_ms)
                        .execute(&self.pool)
                        .await
                        .map_err(query_err)?;
                    Ok(done.rows_affected())
                }
                .boxed()
            }

            fn record_executions<'a>(
                &'a self,
                rows: &'a [exai_core::store::Execution],
            ) -> BoxFuture<'a, Result<(), StoreError>> {
                async move {
                    // 10 parameters a row: well under both backends' limits (SQLite 32,766, PostgreSQL 65,535).
                    for chunk in rows.chunks(1_000) {
                        let mut insert = sqlx::QueryBuilder::new(
                            "INSERT INTO tool_executions \
                             (at_ms, tool, provider, model, latency_ms, status, error_kind, tokens_in, tokens_out, session) ",
                        );
                        insert.push_values(chunk, |mut row, e| {
                            row.push_bind(e.at_ms)
                                .push_bind(&e.tool)
                                .push_bind(e.provider.as_deref())
                                .push_bind(e.model.as_deref())
                                .push_bind(e.latency_ms)
                                .push_bind(&e.status)
                                .push_bind(e.error_kind.as_deref())
                                .push_bind(e.tokens_in)
                                .push_bind(e.tokens_out)
                                .push_bind(e.session.as_deref());
                        });
                        insert.build().execute(&self.pool).await.map_err(query_err)?;
                    }
                    Ok(())
                }
                .boxed()
            }

            fn recent_executions(
                &self,
                limit: u32,
            ) -> BoxFuture<'_, Result<Vec<exai_core::store::Execution>, StoreError>> {
                async move {
                    type Row = (
                        i64,
                        String,
                        Option<String>,
                        Option<String>,
                        i64,
                        String,
                        Option<String>,
                        Option<i64>,
                        Option<i64>,
                        Option<String>,
                    );
                    let rows: Vec<Row> = sqlx::query_as(
                        "SELECT at_ms, tool, provider, model, latency_ms, status, error_kind, tokens_in, tokens_out, \
                         session FROM tool_executions ORDER BY at_ms DESC, id DESC LIMIT $1",
                    )
                    .bind(i64::from(limit))
                    .fetch_all(&self.pool)
                    .await
                    .map_err(query_err)?;
                    Ok(rows
                        .into_iter()
                        .map(|(at_ms, tool, provider, model, latency_ms, status, error_kind, tokens_in, tokens_out, session)| {
                            exai_core::store::Execution {
                                at_ms,
                                tool,
                                provider,
                                model,
                                latency_ms,
                                status,
                                error_kind,
                                tokens_in,
                                tokens_out,
                                session,
                            }
                        })
                        .collect())
                }
                .boxed()
            }

            fn purge_executions(&self, before_ms: i64) -> BoxFuture<'_, Result<u64, StoreError>> {
                async move {
                    let done = sqlx::query("DELETE FROM tool_executions WHERE at_ms < $1")
                        .bind(before_ms)
                        .execute(&self.pool)
                        .await
                        .map_err(query_err)?;
                    Ok(done.rows_affected())
                }
                .boxed()
            }

            fn record_tool_baselines<'a>(
                &'a self,
                baselines: &'a [exai_core::store::ToolBaseline],
            ) -> BoxFuture<'a, Result<(), StoreError>> {
                async move {
                    let mut tx = self.pool.begin().await.map_err(query_err)?;
                    for b in baselines {
                        sqlx::query(
                            "INSERT INTO tool_baselines \
                             (at_ms, tool, transport, runs, errors, p50_ms, p95_ms, mean_ms) \
                             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                        )
                        .bind(b.at_ms)
                        .bind(&b.tool)
                        .bind(&b.transport)
                        .bind(b.runs)
                        .bind(b.errors)
                        .bind(b.p50_ms)
                        .bind(b.p95_ms)
                        .bind(b.mean_ms)
                        .execute(&mut *tx)
                        .await
                        .map_err(query_err)?;
                    }
                    tx.commit().await.map_err(query_err)
                }
                .boxed()
            }

            fn latest_tool_baselines(
                &self,
            ) -> BoxFuture<'_, Result<Vec<exai_core::store::ToolBaseline>, StoreError>> {
                async move {
                    type Row = (i64, String, String, i64, i64, f64, f64, f64);
                    let rows: Vec<Row> = sqlx::query_as(
                        "SELECT at_ms, tool, transport, runs, errors, p50_ms, p95_ms, mean_ms FROM tool_baselines b \
                         WHERE id = (SELECT MAX(id) FROM tool_baselines l WHERE l.tool = b.tool AND l.transport = b.transport) \
                         ORDER BY tool, transport",
                    )
                    .fetch_all(&self.pool)
                    .await
                    .map_err(query_err)?;
                    Ok(rows
                        .into_iter()
                        .map(|(at_ms, tool, transport, runs, errors, p50_ms, p95_ms, mean_ms)| {
                            exai_core::store::ToolBaseline { at_ms, tool, transport, runs, errors, p50_ms, p95_ms, mean_ms }
                        })
                        .collect())
                }
                .boxed()
            }

            fn record_alert<'a>(
                &'a self,
                a: &'a exai_core::store::AlertRecord,
            ) -> BoxFuture<'a, Result<(), StoreError>> {
                async move {
                    sqlx::query(
                        "INSERT INTO alerts (at_ms, rule, severity, message, firing) VALUES ($1, $2, $3, $4, $5)",
                    )
                    .bind(a.at_ms)
                    .bind(&a.rule)
                    .bind(&a.severity)
                    .bind(&a.message)
                    .bind(a.firing)
                    .execute(&self.pool)
                    .await
                    .map_err(query_err)?;
                    Ok(())
                }
                .boxed()
            }

            fn recent_alerts(
                &self,
                limit: u32,
            ) -> BoxFuture<'_, Result<Vec<exai_core::store::AlertRecord>, StoreError>> {
                async move {
                    let rows: Vec<(i64, i64, String, String, String, bool)> = sqlx::query_as(
                        "SELECT id, at_ms, rule, severity, message, firing FROM alerts \
                         ORDER BY at_ms DESC, id DESC LIMIT $1",
                    )
                    .bind(i64::from(limit))
                    .fetch_all(&self.pool)
                    .await
                    .map_err(query_err)?;
                    Ok(rows
                        .into_iter()
                        .map(|(id, at_ms, rule, severity, message, firing)| exai_core::store::AlertRecord {
                            id,
                            at_ms,
                            rule,
                            severity,
                            message,
                            firing,
                        })
                        .collect())
                }
                .boxed()
            }

            fn record_observation<'a>(
                &'a self,
                o: &'a exai_core::store::Observation,
            ) -> BoxFuture<'a, Result<i64, StoreError>> {
                async move {
                    sqlx::query_scalar(
                        "INSERT INTO auditor_observations \
                         (at_ms, severity, category, message, evidence, acknowledged, acknowledged_at_ms) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
                    )
                    .bind(o.at_ms)
                    .bind(&o.severity)
                    .bind(&o.category)
                    .bind(&o.message)
                    .bind(&o.evidence)
                    .bind(o.acknowledged)
                    .bind(o.acknowledged_at_ms)
                    .fetch_one(&self.pool)
                    .await
                    .map_err(query_err)
                }
                .boxed()
            }

            fn observations(
                &self,
                limit: u32,
            ) -> BoxFuture<'_, Result<Vec<exai_core::store::Observation>, StoreError>> {
                async move {
                    type Row = (i64, i64, String, String, String, String, bool, Option<i64>);
                    let rows: Vec<Row> = sqlx::query_as(
                        "SELECT id, at_ms, severity, category, message, evidence, acknowledged, acknowledged_at_ms \
                         FROM auditor_observations ORDER BY at_ms DESC, id DESC LIMIT $1",
                    )
                    .bind(i64::from(limit))
                    .fetch_all(&self.pool)
                    .await
                    .map_err(query_err)?;
                    Ok(rows
                        .into_iter()
                        .map(|(id, at_ms, severity, category, message, evidence, acknowledged, acknowledged_at_ms)| {
                            exai_core::store::Observation {
                                id,
                                at_ms,
                                severity,
                                category,
                                message,
                                evidence,
                                acknowledged,
                                acknowledged_at_ms,
                            }
                        })
                        .collect())
                }
                .boxed()
            }

            fn acknowledge_observation(&self, id: i64, at_ms: i64) -> BoxFuture<'_, Result<bool, StoreError>> {
                async move {
                    let done = sqlx::query(
                        "UPDATE auditor_observations SET acknowledged = TRUE, acknowledged_at_ms = $2 WHERE id = $1",
                    )
                    .bind(id)
                    .bind(at_ms)
                    .execute(&self.pool)
                    .await
                    .map_err(query_err)?;
                    Ok(done.rows_affected() > 0)
                }
                .boxed()
            }

            fn put_shared<'a>(
                &'a self,
                scope: &'a str,
                name: &'a str,
                body: &'a str,
                expires_at_ms: i64,
            ) -> BoxFuture<'a, Result<(), StoreError>> {
                async move {
                    sqlx::query(
                        "INSERT INTO shared_records (scope, name, body, expires_at_ms) VALUES ($1, $2, $3, $4) \
                         ON CONFLICT (scope, name) DO UPDATE \
                         SET body = excluded.body, expires_at_ms = excluded.expires_at_ms",
                    )
                    .bind(scope)
                    .bind(name)
                    .bind(body)
                    .bind(expires_at_ms)
                    .execute(&self.pool)
                    .await
                    .map_err(query_err)?;
                    Ok(())
                }
                .boxed()
            }

            fn shared<'a>(
                &'a self,
                scope: &'a str,
                name: &'a str,
                now_ms: i64,
            ) -> BoxFuture<'a, Result<Option<SharedRecord>, StoreError>> {
                async move {
                    let row: Option<(String, i64)> = sqlx::query_as(
                        "SELECT body, expires_at_ms FROM shared_records \
                         WHERE scope = $1 AND name = $2 AND expires_at_ms > $3",
                    )
                    .bind(scope)
                    .bind(name)
                    .bind(now_ms)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(query_err)?;
                    Ok(row.map(|(body, expires_at_ms)| SharedRecord { name: name.to_owned(), body, expires_at_ms }))
                }
                .boxed()
            }

            fn touch_shared<'a>(
                &'a self,
                scope: &'a str,
                name: &'a str,
                expires_at_ms: i64,
                now_ms: i64,
            ) -> BoxFuture<'a, Result<bool, StoreError>> {
                async move {
                    let done = sqlx::query(
                        "UPDATE shared_records SET expires_at_ms = $3 \
                         WHERE scope = $1 AND name = $2 AND expires_at_ms > $4",
                    )
                    .bind(scope)
                    .bind(name)
                    .bind(expires_at_ms)
                    .bind(now_ms)
                    .execute(&self.pool)
                    .await
                    .map_err(query_err)?;
                    Ok(done.rows_affected() > 0)
                }
                .boxed()
            }

            fn take_shared<'a>(
                &'a self,
                scope: &'a str,
                now_ms: i64,
            ) -> BoxFuture<'a, Result<Vec<SharedRecord>, StoreError>> {
                async move {
                    let rows: Vec<(String, String, i64)> = sqlx::query_as(
                        "DELETE FROM shared_records WHERE scope = $1 AND expires_at_ms > $2 \
                         RETURNING name, body, expires_at_ms",
                    )
                    .bind(scope)
                    .bind(now_ms)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(query_err)?;
                    let mut records: Vec<SharedRecord> = rows
                        .into_iter()
                        .map(|(name, body, expires_at_ms)| SharedRecord { name, body, expires_at_ms })
                        .collect();
                    records.sort_by(|a, b| a.name.cmp(&b.name));
                    Ok(records)
                }
                .boxed()
            }

            fn delete_shared<'a>(&'a self, scope: &'a str, name: &'a str) -> BoxFuture<'a, Result<bool, StoreError>> {
                async move {
                    let done = sqlx::query("DELETE FROM shared_records WHERE scope = $1 AND name = $2")
                        .bind(scope)
                        .bind(name)
                        .execute(&self.pool)
                        .await
                        .map_err(query_err)?;
                    Ok(done.rows_affected() > 0)
                }
                .boxed()
            }

            fn purge_shared(&self, now_ms: i64) -> BoxFuture<'_, Result<u64, StoreError>> {
                async move {
                    let done = sqlx::query("DELETE FROM shared_records WHERE expires_at_ms <= $1")
                        .bind(now_ms)
                        .execute(&self.pool)
                        .await
                        .map_err(query_err)?;
                    Ok(done.rows_affected())
                }
                .boxed()
            }
        }
    };
}

pub(crate) use impl_store;

use exai_core::provider::Role;
use exai_core::store::StoreError;

pub(crate) fn query_err(e: sqlx::Error) -> StoreError {
    StoreError::Query(e.to_string())
}

pub(crate) fn role_name(role: Role) -> &'static str {
    match role {
        Role::System => "system",
        Role::User => "user",
        Role::Assistant => "assistant",
    }
}

pub(crate) fn parse_role(text: &str) -> Result<Role, StoreError> {
    match text {
        "system" => Ok(Role::System),
        "user" => Ok(Role::User),
        "assistant" => Ok(Role::Assistant),
        other => Err(StoreError::Query(format!("unknown role {other:?} in messages"))),
    }
}
