//! [`Timestamp`]: the one type for a moment in every answer, page and row. RFC 3339 in JSON, a
//! date-time string in the OpenAPI document, `timestamptz` in PostgreSQL; inside, an
//! [`OffsetDateTime`] it dereferences to.

use serde::{Deserialize, Serialize};
use std::ops::Deref;
use time::OffsetDateTime;

/// A moment, as RFC 3339 in JSON (`2026-11-30T22:05:00Z`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(sqlx::Type), sqlx(transparent))]
pub struct Timestamp(#[serde(with = "time::serde::rfc3339")] pub OffsetDateTime);

impl Timestamp {
    pub fn now() -> Self {
        Self(OffsetDateTime::now_utc())
    }

    /// Seconds since the Unix epoch.
    pub fn unix(self) -> i64 {
        self.0.unix_timestamp()
    }
}

impl Deref for Timestamp {
    type Target = OffsetDateTime;
    fn deref(&self) -> &OffsetDateTime {
        &self.0
    }
}

impl From<OffsetDateTime> for Timestamp {
    fn from(t: OffsetDateTime) -> Self {
        Self(t)
    }
}

impl From<Timestamp> for OffsetDateTime {
    fn from(t: Timestamp) -> Self {
        t.0
    }
}

impl PartialEq<OffsetDateTime> for Timestamp {
    fn eq(&self, other: &OffsetDateTime) -> bool {
        self.0 == *other
    }
}

impl PartialOrd<OffsetDateTime> for Timestamp {
    fn partial_cmp(&self, other: &OffsetDateTime) -> Option<std::cmp::Ordering> {
        self.0.partial_cmp(other)
    }
}

impl std::ops::Sub<OffsetDateTime> for Timestamp {
    type Output = time::Duration;
    fn sub(self, rhs: OffsetDateTime) -> time::Duration {
        self.0 - rhs
    }
}

impl std::ops::Sub<Timestamp> for OffsetDateTime {
    type Output = time::Duration;
    fn sub(self, rhs: Timestamp) -> time::Duration {
        self - rhs.0
    }
}

impl std::ops::Sub for Timestamp {
    type Output = time::Duration;
    fn sub(self, rhs: Timestamp) -> time::Duration {
        self.0 - rhs.0
    }
}

impl std::ops::Add<time::Duration> for Timestamp {
    type Output = Timestamp;
    fn add(self, rhs: time::Duration) -> Timestamp {
        Timestamp(self.0 + rhs)
    }
}

impl std::ops::Sub<time::Duration> for Timestamp {
    type Output = Timestamp;
    fn sub(self, rhs: time::Duration) -> Timestamp {
        Timestamp(self.0 - rhs)
    }
}

#[cfg(feature = "ssr")]
impl utoipa::PartialSchema for Timestamp {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
            .examples([serde_json::json!("2026-11-30T22:05:00Z")])
            .into()
    }
}

#[cfg(feature = "ssr")]
impl utoipa::ToSchema for Timestamp {}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn json_is_rfc3339_both_ways() {
        let cases = [
            (
                datetime!(2026-11-30 22:05:00 UTC),
                "\"2026-11-30T22:05:00Z\"",
            ),
            (
                datetime!(2026-01-02 03:04:05.5 UTC),
                "\"2026-01-02T03:04:05.5Z\"",
            ),
        ];
        for (t, json) in cases {
            assert_eq!(serde_json::to_string(&Timestamp(t)).unwrap(), json);
            assert_eq!(serde_json::from_str::<Timestamp>(json).unwrap(), t);
        }
        let none: Option<Timestamp> = None;
        assert_eq!(serde_json::to_string(&none).unwrap(), "null");
        assert!(serde_json::from_str::<Timestamp>("\"yesterday\"").is_err());
    }
}
