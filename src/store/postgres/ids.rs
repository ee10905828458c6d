//! The rent roll's ids as PostgreSQL reads and writes them: text, checked when read.

use postgres::types::{FromSql, IsNull, ToSql, Type, to_sql_checked};

use crate::domain::{LandlordId, PropertyId};

type BoxError = Box<dyn std::error::Error + Sync + Send>;

macro_rules! sql_id {
    ($name:ident) => {
        impl<'a> FromSql<'a> for $name {
            fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Self, BoxError> {
                Ok($name::parse(<&str as FromSql>::from_sql(ty, raw)?)?)
            }

            fn accepts(ty: &Type) -> bool {
                <&str as FromSql>::accepts(ty)
            }
        }

        impl ToSql for $name {
            fn to_sql(
                &self,
                ty: &Type,
                out: &mut postgres::types::private::BytesMut,
            ) -> Result<IsNull, BoxError> {
                self.as_str().to_sql(ty, out)
            }

            fn accepts(ty: &Type) -> bool {
                <&str as ToSql>::accepts(ty)
            }

            to_sql_checked!();
        }
    };
}

sql_id!(PropertyId);
sql_id!(LandlordId);
