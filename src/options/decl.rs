//! The machinery of the option table: [`declare_options!`] turns one row per option into the
//! options struct, the presets' values, the typed option ids, the clap flags and what
//! `--resume` and `run.sh` need to know about each flag.

use clap::parser::ValueSource;

/// What `--resume` does with a flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resume {
    /// Refused: the run's `opts.json` holds the value.
    Refuse,
    /// May be given (the device, the thread count).
    Change,
    /// May raise the run's value (`--epoch`).
    Raise,
}

/// One flag of the table.
#[derive(Debug, Clone, Copy)]
pub struct Flag {
    /// The long flag, `--` included.
    pub long: &'static str,
    /// Where the flag shows in `--help` (flags sort by it).
    pub help_at: u32,
    /// Upstream's camelCase spelling (`learningRate`), which `run.sh` translates.
    pub upstream: Option<&'static str>,
    pub resume: Resume,
    /// The row's doc comment, one entry per line.
    pub doc: &'static [&'static str],
    /// The clap argument, without its help.
    pub make: fn() -> clap::Arg,
}

impl Flag {
    /// The clap argument with its help: the doc comment as clap's derive renders a
    /// one-paragraph doc comment (lines joined, a final period dropped).
    pub fn arg(&self) -> clap::Arg {
        let mut help = self
            .doc
            .iter()
            .map(|l| l.trim())
            .collect::<Vec<_>>()
            .join(" ");
        if help.ends_with('.') && !help.ends_with("..") {
            help.pop();
        }
        (self.make)().help(help)
    }
}

/// The value parser of 0/1 flags (upstream's `-ACC 1`); `true`/`false` are accepted too.
pub fn flag01(s: &str) -> Result<bool, String> {
    match s {
        "0" | "false" => Ok(false),
        "1" | "true" => Ok(true),
        _ => Err(format!("expected 0 or 1, found `{s}`")),
    }
}

/// The value of flag `id` when it was given on the command line (not a default).
pub fn given<T: Clone + Send + Sync + 'static>(m: &clap::ArgMatches, id: &str) -> Option<T> {
    match m.value_source(id) {
        Some(ValueSource::CommandLine) => m.get_one::<T>(id).cloned(),
        _ => None,
    }
}

/// `snake_case` as `--kebab-case`; `N` is the input's length plus 2.
pub const fn long_flag<const N: usize>(s: &str) -> [u8; N] {
    let (b, mut out, mut i) = (s.as_bytes(), [b'-'; N], 0);
    while i < b.len() {
        out[i + 2] = if b[i] == b'_' { b'-' } else { b[i] };
        i += 1;
    }
    out
}

/// `snake_case` as `SCREAMING_SNAKE_CASE`, the value name clap's derive gives a field.
pub const fn value_name<const N: usize>(s: &str) -> [u8; N] {
    let (b, mut out, mut i) = (s.as_bytes(), [0; N], 0);
    while i < N {
        out[i] = b[i].to_ascii_uppercase();
        i += 1;
    }
    out
}

/// A `&'static str` computed at compile time from a row's field name by `$f` (see
/// [`long_flag`]); `$extra` is the length it adds.
macro_rules! const_name {
    ($name:expr, $f:path, $extra:expr) => {{
        const S: &str = $name;
        const B: [u8; S.len() + $extra] = $f(S);
        const OUT: &str = match ::std::str::from_utf8(&B) {
            Ok(s) => s,
            Err(_) => panic!("option names are ASCII"),
        };
        OUT
    }};
}
pub(crate) use const_name;

/// The option table. Each row of `fields` is a field of the options struct (doc comment, serde
/// attributes, type) with its value in each layer (`main`, then the presets' and recipes'
/// changes; see the `layers` enum) and, after `=>`, its flag when it has one:
///
/// `=> HELP_AT SET FLAG_TYPE [.more(clap).settings()], upstream "camelCase", resume Change`
///
/// where `HELP_AT` orders `--help`, `SET` is how a given flag sets the field (`set`: the value;
/// `some`: `Some(value)`; `own`: by code of its own) and the rest is optional (default: the
/// value parser of `FLAG_TYPE`, no upstream spelling, refused by `--resume`). Rows of `flags`
/// are flags without a field. The doc comment is the flag's help.
///
/// From it come the struct, an enum of typed option ids (misspelt ones fail to compile), the
/// flags (`$Opt::flag`), a view of the flags given on a command line with one typed accessor
/// per flag (`$Given`) read from the clap matches of `$Args`, and the layers (`$Options::layer`,
/// `$Options::set_given`).
macro_rules! declare_options {
    (
        $(#[$meta:meta])*
        pub struct $Options:ident;
        $(#[$args_meta:meta])*
        pub struct $Args:ident;
        ids $Opt:ident, given $Given:ident, layers $Layer:ident;
        fields {$(
            $(#[doc = $doc:literal])*
            $(#[serde $serde:tt])*
            $field:ident: $fty:ty = { main: $main:expr $(, $layer:ident: $val:expr)* }
            $(=> $at:literal $set:ident $flagty:ty $([$($tweak:tt)*])?
                $(, upstream $up:literal)? $(, resume $res:ident)?)?;
        )*}
        flags {$(
            $(#[doc = $fdoc:literal])*
            $flag:ident: $ffty:ty => $fat:literal $([$($ftweak:tt)*])?
                $(, upstream $fup:literal)? $(, resume $fres:ident)?;
        )*}
    ) => {
        $(#[$meta])*
        pub struct $Options {
            $($(#[doc = $doc])* $(#[serde $serde])* pub $field: $fty,)*
        }

        /// Every option and flag of the table, by its field name.
        #[allow(non_camel_case_types)]
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $Opt {
            $($field,)*
            $($flag,)*
        }

        impl $Opt {
            /// Every row, fields first, in the table's order.
            pub const ALL: &'static [$Opt] = &[$($Opt::$field,)* $($Opt::$flag,)*];

            /// The field name, which is also the clap id.
            pub fn name(self) -> &'static str {
                match self {
                    $($Opt::$field => stringify!($field),)*
                    $($Opt::$flag => stringify!($flag),)*
                }
            }

            /// The flag as spelled on the command line (`--k`); the name for a field without one.
            pub fn long(self) -> &'static str {
                self.flag().map_or(self.name(), |f| f.long)
            }

            /// The flags, in `--help` order.
            pub fn flags() -> Vec<(Self, $crate::options::decl::Flag)> {
                let mut v: Vec<_> =
                    Self::ALL.iter().filter_map(|&o| Some((o, o.flag()?))).collect();
                v.sort_by_key(|(_, f)| f.help_at);
                v
            }

            /// The row named `name` (a clap id).
            pub fn from_name(name: &str) -> Option<Self> {
                Self::ALL.iter().copied().find(|o| o.name() == name)
            }

            /// The flag, `None` for a field no flag sets.
            pub fn flag(self) -> Option<$crate::options::decl::Flag> {
                match self {
                    $($Opt::$field => $crate::options::decl::declare_options!(@flag $field [$($doc)*]
                        $($at $flagty [$($($tweak)*)?] [$($up)?] [$($res)?])?),)*
                    $($Opt::$flag => $crate::options::decl::declare_options!(@flag $flag [$($fdoc)*]
                        $fat $ffty [$($($ftweak)*)?] [$($fup)?] [$($fres)?]),)*
                }
            }
        }

        $(#[$args_meta])*
        #[derive(Debug, Clone)]
        pub struct $Args(::clap::ArgMatches);

        impl ::clap::FromArgMatches for $Args {
            fn from_arg_matches(m: &::clap::ArgMatches) -> Result<Self, ::clap::Error> {
                Ok(Self(m.clone()))
            }

            fn update_from_arg_matches(
                &mut self,
                m: &::clap::ArgMatches,
            ) -> Result<(), ::clap::Error> {
                self.0 = m.clone();
                Ok(())
            }
        }

        impl ::clap::Args for $Args {
            fn augment_args(cmd: ::clap::Command) -> ::clap::Command {
                cmd.args($Opt::flags().into_iter().map(|(_, f)| f.arg()))
            }

            fn augment_args_for_update(cmd: ::clap::Command) -> ::clap::Command {
                Self::augment_args(cmd)
            }
        }

        impl $Args {
            /// The flags as given on the command line.
            pub fn given(&self) -> $Given<'_> {
                $Given(&self.0)
            }
        }

        /// The flags of a parsed command line, each as given there (`None`: left out).
        #[derive(Debug, Clone, Copy)]
        pub struct $Given<'a>(pub &'a ::clap::ArgMatches);

        #[allow(dead_code)]
        impl $Given<'_> {
            $($(
                pub fn $field(&self) -> Option<$flagty> {
                    $crate::options::decl::given(self.0, stringify!($field))
                }
            )?)*
            $(
                pub fn $flag(&self) -> Option<$ffty> {
                    $crate::options::decl::given(self.0, stringify!($flag))
                }
            )*

            /// Whether `opt`'s flag was given.
            pub fn has(&self, opt: $Opt) -> bool {
                opt.flag().is_some()
                    && self.0.value_source(opt.name())
                        == Some(::clap::parser::ValueSource::CommandLine)
            }
        }

        #[allow(dead_code)]
        impl $Options {
            /// The value of field `opt` as JSON (`None` for a flag without a field).
            pub fn json_of(&self, opt: $Opt) -> Option<::serde_json::Value> {
                #[allow(unreachable_patterns)]
                match opt {
                    $($Opt::$field => ::serde_json::to_value(&self.$field).ok(),)*
                    _ => None,
                }
            }

            /// Every row's `main` value.
            fn main_layer() -> Self {
                Self { $($field: $main,)* }
            }

            /// Sets the values that layer `layer` gives.
            fn layer(&mut self, layer: $Layer) {
                let _ = layer;
                $($(if layer == $Layer::$layer {
                    self.$field = $val;
                })*)*
            }

            /// Sets the fields whose flags `given` holds, for the rows `pick` takes (rows set
            /// `own` are left to their code).
            pub fn set_given(&mut self, given: $Given<'_>, pick: impl Fn($Opt) -> bool) {
                $($(
                    if pick($Opt::$field) {
                        if let Some(v) = given.$field() {
                            $crate::options::decl::declare_options!(@set $set, self.$field, v);
                        }
                    }
                )?)*
            }
        }
    };
    (@flag $name:ident [$($doc:literal)*]) => { None };
    (@flag $name:ident [$($doc:literal)*] $at:literal $ty:ty [$($tweak:tt)*] [$($up:literal)?]
        [$($res:ident)?]) => {
        Some($crate::options::decl::Flag {
            long: $crate::options::decl::const_name!(
                stringify!($name), $crate::options::decl::long_flag, 2
            ),
            help_at: $at,
            upstream: None $(.or(Some($up)))?,
            resume: {
                let _r = $crate::options::decl::Resume::Refuse;
                $(let _r = $crate::options::decl::Resume::$res;)?
                _r
            },
            doc: &[$($doc),*],
            make: || {
                ::clap::Arg::new(stringify!($name))
                    .long(&$crate::options::decl::const_name!(
                        stringify!($name), $crate::options::decl::long_flag, 2
                    )[2..])
                    .value_name($crate::options::decl::const_name!(
                        stringify!($name), $crate::options::decl::value_name, 0
                    ))
                    .action(::clap::ArgAction::Set)
                    .value_parser(::clap::value_parser!($ty))
                    $($tweak)*
            },
        })
    };
    (@set set, $target:expr, $v:expr) => { $target = $v };
    (@set some, $target:expr, $v:expr) => { $target = Some($v) };
    (@set own, $target:expr, $v:expr) => { let _ = $v; };
}
pub(crate) use declare_options;
