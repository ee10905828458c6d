//! The rent roll's ids as SQLite reads and writes them: text, checked when read.

use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSql, ToSqlOutput, ValueRef};

use crate::domain::{LandlordId, PropertyId};

macro_rules! sql_id {
    ($name:ident) => {
        impl FromSql for $name {
            fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
                $name::parse(value.as_str()?).map_err(|reason| FromSqlError::Other(reason.into()))
            }
        }

        impl ToSql for $name {
            fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
                Ok(ToSqlOutput::from(self.as_str()))
            }
        }
    };
}

sql_id!(PropertyId);
sql_id!(LandlordId);
