//! Locations (stores and warehouses) and the stock held at each. `stock_levels` holds every
//! location's stock but the default one's, which is the rest of `products.stock_on_hand`; both
//! follow from the ledger (see migrations/20261201400000_locations.sql). Reads here present the
//! default location like any other.

use serde::{Deserialize, Serialize};
use sqlx::AssertSqlSafe;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::cursor::{self, Page};
use crate::DbError;

#[derive(Debug, Clone, sqlx::FromRow, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = Location)]
pub struct LocationRow {
    pub id: Uuid,
    pub code: String,
    pub name: String,
    /// `store` or `warehouse`.
    pub kind: String,
    pub address: Option<String>,
    pub pickup_enabled: bool,
    pub active: bool,
    pub is_default: bool,
    pub version: i64,
}

const COLS: &str = "id, code, name, kind, address, pickup_enabled, active, is_default, version";

/// A new location's fields.
pub struct NewLocation<'a> {
    pub code: &'a str,
    pub name: &'a str,
    pub kind: &'a str,
    pub address: Option<&'a str>,
    pub pickup_enabled: bool,
}

/// A taken code: `DbError::Unique("locations_code_key")`.
pub async fn insert(conn: &mut PgConnection, l: &NewLocation<'_>) -> Result<LocationRow, DbError> {
    Ok(sqlx::query_as(AssertSqlSafe(format!(
        "INSERT INTO locations (id, code, name, kind, address, pickup_enabled)
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING {COLS}"
    )))
    .bind(Uuid::now_v7())
    .bind(l.code)
    .bind(l.name)
    .bind(l.kind)
    .bind(l.address)
    .bind(l.pickup_enabled)
    .fetch_one(conn)
    .await?)
}

/// Every location (a shop has a handful), ordered by name; `public` keeps active
/// pickup-enabled ones only.
pub async fn list(pool: &PgPool, public: bool) -> Result<Vec<LocationRow>, DbError> {
    Ok(sqlx::query_as(AssertSqlSafe(format!(
        "SELECT {COLS} FROM locations WHERE NOT $1 OR (active AND pickup_enabled)
         ORDER BY is_default DESC, name, id"
    )))
    .bind(public)
    .fetch_all(pool)
    .await?)
}

pub async fn get(conn: &mut PgConnection, id: Uuid) -> Result<Option<LocationRow>, DbError> {
    Ok(sqlx::query_as(AssertSqlSafe(format!(
        "SELECT {COLS} FROM locations WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(conn)
    .await?)
}

/// The location row locked for an update.
pub async fn get_for_update(
    conn: &mut PgConnection,
    id: Uuid,
) -> Result<Option<LocationRow>, DbError> {
    Ok(sqlx::query_as(AssertSqlSafe(format!(
        "SELECT {COLS} FROM locations WHERE id = $1 FOR NO KEY UPDATE"
    )))
    .bind(id)
    .fetch_optional(conn)
    .await?)
}

/// The default location's id.
pub async fn default_id(conn: &mut PgConnection) -> Result<Uuid, DbError> {
    Ok(sqlx::query_scalar("SELECT till_default_location_id()")
        .fetch_one(conn)
        .await?)
}

/// Fields a PATCH may change (`None`: unchanged).
#[derive(Default)]
pub struct LocationPatch<'a> {
    pub code: Option<&'a str>,
    pub name: Option<&'a str>,
    pub kind: Option<&'a str>,
    pub address: Option<Option<&'a str>>,
    pub pickup_enabled: Option<bool>,
    pub active: Option<bool>,
}

/// Applies `p` and bumps `version`.
pub async fn update(
    conn: &mut PgConnection,
    id: Uuid,
    p: &LocationPatch<'_>,
) -> Result<LocationRow, DbError> {
    Ok(sqlx::query_as(AssertSqlSafe(format!(
        "UPDATE locations SET
            code = COALESCE($2, code), name = COALESCE($3, name), kind = COALESCE($4, kind),
            address = CASE WHEN $5 THEN $6 ELSE address END,
            pickup_enabled = COALESCE($7, pickup_enabled), active = COALESCE($8, active),
            version = version + 1, updated_at = now()
         WHERE id = $1 RETURNING {COLS}"
    )))
    .bind(id)
    .bind(p.code)
    .bind(p.name)
    .bind(p.kind)
    .bind(p.address.is_some())
    .bind(p.address.flatten())
    .bind(p.pickup_enabled)
    .bind(p.active)
    .fetch_one(conn)
    .await?)
}

/// What keeps a location from being deactivated: units on hand there, and open transfers
/// (draft, in transit, partially received) from or to it.
pub async fn holdings(conn: &mut PgConnection, id: Uuid) -> Result<(i64, i64), DbError> {
    Ok(sqlx::query_as(
        "SELECT
            (SELECT COALESCE(sum(on_hand), 0)::bigint FROM stock_levels WHERE location_id = $1),
            -- (the default location is never deactivated, so its stock need not be summed)
            (SELECT count(*) FROM transfers
             WHERE (from_location_id = $1 OR to_location_id = $1)
               AND status IN ('draft', 'in_transit', 'partially_received'))",
    )
    .bind(id)
    .fetch_one(conn)
    .await?)
}

/// On hand of one product at one location (0 when it never had any), as last committed.
pub async fn on_hand(
    conn: &mut PgConnection,
    product_id: Uuid,
    location_id: Uuid,
) -> Result<i64, DbError> {
    Ok(
        sqlx::query_scalar("SELECT COALESCE(till_on_hand($1, $2), 0)")
            .bind(product_id)
            .bind(location_id)
            .fetch_one(conn)
            .await?,
    )
}

/// One (product, location) pair: on hand, and units on their way there.
#[derive(Debug, Clone, sqlx::FromRow, Serialize, utoipa::ToSchema)]
#[schema(as = StockLevel)]
pub struct LevelRow {
    pub product_id: Uuid,
    pub location_id: Uuid,
    pub on_hand: i64,
    /// Units dispatched to this location by transfers and not yet received (or written off).
    pub in_transit_in: i64,
}

/// Keyset cursor of the levels list: (product_id, location_id).
pub type LevelCursor = (Uuid, Uuid);

pub fn decode_level_cursor(c: &str) -> Option<LevelCursor> {
    cursor::decode(c)
}

/// Every (product, location) pair with its on hand: the default location's row for each tracked
/// product, then the other locations' rows.
const ALL_LEVELS: &str = "(SELECT p.id AS product_id, d.id AS location_id,
            (p.stock_on_hand - COALESCE((SELECT sum(s.on_hand) FROM stock_levels s
                                         WHERE s.product_id = p.id), 0))::bigint AS on_hand
     FROM products p CROSS JOIN (SELECT id FROM locations WHERE is_default) d
     WHERE p.track_stock
     UNION ALL
     SELECT product_id, location_id, on_hand FROM stock_levels)";

const IN_TRANSIT_IN: &str =
    "(SELECT COALESCE(sum(tl.quantity - tl.received - tl.damaged), 0)::bigint
      FROM transfer_lines tl JOIN transfers t ON t.id = tl.transfer_id
      WHERE tl.product_id = sl.product_id AND t.to_location_id = sl.location_id
        AND t.status IN ('in_transit', 'partially_received'))";

/// Stock levels ordered by (product, location), optionally of one product and/or location.
/// Every tracked product has a row at the default location; at another location, a pair
/// appears once stock has been there or was sent there.
pub async fn levels(
    pool: &PgPool,
    product_id: Option<Uuid>,
    location_id: Option<Uuid>,
    after: Option<LevelCursor>,
    limit: usize,
) -> Result<Page<LevelRow>, DbError> {
    let rows: Vec<LevelRow> = sqlx::query_as(AssertSqlSafe(format!(
        "SELECT sl.product_id, sl.location_id, sl.on_hand, {IN_TRANSIT_IN} AS in_transit_in
         FROM {ALL_LEVELS} sl
         WHERE ($1::uuid IS NULL OR sl.product_id = $1)
           AND ($2::uuid IS NULL OR sl.location_id = $2)
           AND ($3::uuid IS NULL OR (sl.product_id, sl.location_id) > ($3, $4))
         ORDER BY sl.product_id, sl.location_id LIMIT $5"
    )))
    .bind(product_id)
    .bind(location_id)
    .bind(after.map(|a| a.0))
    .bind(after.map(|a| a.1))
    .bind(limit as i64 + 1)
    .fetch_all(pool)
    .await?;
    Ok(Page::from_rows(rows, limit, |l| {
        (l.product_id, l.location_id)
    }))
}

/// A product's stock at one location, as products show it to staff.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LocationStock {
    pub location_id: Uuid,
    pub on_hand: i64,
}

/// `stock_by_location` of each tracked product in `ids`: the default location, then every
/// other location that holds or held stock of it.
pub async fn stock_by_location(
    pool: &PgPool,
    ids: &[Uuid],
) -> Result<Vec<(Uuid, Vec<LocationStock>)>, DbError> {
    let rows: Vec<(Uuid, sqlx::types::Json<Vec<LocationStock>>)> =
        sqlx::query_as(AssertSqlSafe(format!(
            "SELECT sl.product_id,
                json_agg(json_build_object('location_id', sl.location_id, 'on_hand', sl.on_hand)
                         ORDER BY l.is_default DESC, l.name, l.id)
         FROM {ALL_LEVELS} sl JOIN locations l ON l.id = sl.location_id
         WHERE sl.product_id = ANY($1)
         GROUP BY sl.product_id"
        )))
        .bind(ids)
        .fetch_all(pool)
        .await?;
    Ok(rows.into_iter().map(|(id, j)| (id, j.0)).collect())
}

/// Units of an active, tracked product at each active pickup location (what a customer choosing
/// a pickup store sees). Empty for an unknown, inactive or untracked product.
pub async fn pickup_availability(
    pool: &PgPool,
    product_id: Uuid,
) -> Result<Vec<LocationStock>, DbError> {
    let rows: Vec<(Uuid, i64)> = sqlx::query_as(AssertSqlSafe(format!(
        "SELECT l.id, COALESCE(sl.on_hand, 0)::bigint
         FROM locations l
         JOIN products p ON p.id = $1 AND p.active AND p.track_stock
         LEFT JOIN {ALL_LEVELS} sl ON sl.product_id = p.id AND sl.location_id = l.id
         WHERE l.active AND l.pickup_enabled
         ORDER BY l.is_default DESC, l.name, l.id"
    )))
    .bind(product_id)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(location_id, on_hand)| LocationStock {
            location_id,
            on_hand,
        })
        .collect())
}
