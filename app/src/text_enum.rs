//! `text_enum!`: a closed set of states stored as `text` in PostgreSQL and written as the same
//! snake_case words in JSON and on pages (`running`, `in_place`, …). One declaration gives the
//! serde names, the sqlx `Type`, the OpenAPI enum, `as_str`, `Display` and `FromStr`.

/// Declares a text enum: `text_enum! { /// doc \n pub enum Name { Variant = "word", … } }`.
macro_rules! text_enum {
    ($(#[$meta:meta])* pub enum $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:tt),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
        #[cfg_attr(feature = "ssr", derive(sqlx::Type, utoipa::ToSchema))]
        #[cfg_attr(feature = "ssr", sqlx(type_name = "text"))]
        pub enum $name {
            $(
                $(#[$vmeta])*
                #[serde(rename = $text)]
                #[cfg_attr(feature = "ssr", sqlx(rename = $text))]
                $variant,
            )+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The stored and shown word.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                match s {
                    $($text => Ok($name::$variant),)+
                    _ => Err(format!(
                        "`{s}` is not one of {}",
                        [$($text),+].join(", ")
                    )),
                }
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.as_str() == *other
            }
        }
    };
}

pub(crate) use text_enum;

#[cfg(test)]
mod tests {
    text_enum! {
        /// A test enum.
        pub enum Phase { Early = "early", LateOn = "late_on" }
    }

    #[test]
    fn words_are_the_same_everywhere() {
        for (p, word) in [(Phase::Early, "early"), (Phase::LateOn, "late_on")] {
            assert_eq!(p.as_str(), word);
            assert_eq!(p.to_string(), word);
            assert_eq!(word.parse::<Phase>(), Ok(p));
            assert_eq!(serde_json::to_string(&p).unwrap(), format!("\"{word}\""));
            assert_eq!(
                serde_json::from_str::<Phase>(&format!("\"{word}\"")).unwrap(),
                p
            );
        }
        assert_eq!(
            "late".parse::<Phase>(),
            Err("`late` is not one of early, late_on".into())
        );
        assert!(serde_json::from_str::<Phase>("\"Early\"").is_err());
        assert_eq!(Phase::ALL, &[Phase::Early, Phase::LateOn]);
    }
}
