//! The adapter that lets a tool module be written with typed input and output: [`TypedTool`] declares the
//! spec as constants and `call` on serde types; [`Typed`] derives the schemas and handles (de)serialization.

use std::future::Future;
use std::marker::PhantomData;

use futures::FutureExt;
use futures::future::BoxFuture;
use rmcp::handler::server::common::{schema_for_input, schema_for_output};
use rmcp::schemars::JsonSchema;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::{Hints, JsonObject, Profile, Tier, Tool, ToolContext, ToolOutput, ToolSpec};
use crate::error::ToolError;

/// A tool written against serde types. Implement this, then register `Typed::<YourTool>::new()`.
pub trait TypedTool: Send + Sync + 'static {
    type Input: DeserializeOwned + JsonSchema + Send + 'static;
    type Output: Serialize + JsonSchema + Send + 'static;
    const NAME: &'static str;
    const TITLE: &'static str;
    const DESCRIPTION: &'static str;
    const TIER: Tier;
    const PROFILE: Profile;
    const HINTS: Hints;

    fn call(ctx: ToolContext, input: Self::Input) -> impl Future<Output = Result<Self::Output, ToolError>> + Send;

    /// The text content for models that ignore `structuredContent`; compact JSON by default.
    fn text(output: &Self::Output) -> String {
        serde_json::to_string(output).unwrap_or_default()
    }
}

/// A [`TypedTool`] as a dynamic [`Tool`].
pub struct Typed<T: TypedTool> {
    spec: ToolSpec,
    _tool: PhantomData<fn() -> T>,
}

impl<T: TypedTool> Typed<T> {
    /// Builds the spec, deriving the input and output schemas from the types.
    ///
    /// # Panics
    /// When `T::Input`'s schema is not an object: a programming error caught by every test run.
    pub fn new() -> Self {
        let input_schema = schema_for_input::<T::Input>()
            .unwrap_or_else(|e| panic!("tool `{}` has an invalid input type: {e}", T::NAME));
        let spec = ToolSpec {
            name: T::NAME,
            title: T::TITLE,
            description: T::DESCRIPTION,
            tier: T::TIER,
            profile: T::PROFILE,
            hints: T::HINTS,
            input_schema,
            output_schema: Some(schema_for_output::<T::Output>()),
        };
        Self {
            spec,
            _tool: PhantomData,
        }
    }
}

impl<T: TypedTool> Default for Typed<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: TypedTool> Tool for Typed<T> {
    fn spec(&self) -> &ToolSpec {
        &self.spec
    }

    fn call(&self, ctx: ToolContext, args: JsonObject) -> BoxFuture<'static, Result<ToolOutput, ToolError>> {
        let input = serde_json::from_value::<T::Input>(Value::Object(args)).map_err(|e| ToolError::InvalidArguments {
            tool: T::NAME.to_owned(),
            message: e.to_string(),
        });
        async move {
            let output = T::call(ctx, input?).await?;
            let structured =
                serde_json::to_value(&output).map_err(|e| ToolError::Internal(format!("{}: {e}", T::NAME)))?;
            Ok(ToolOutput {
                text: T::text(&output),
                structured: Some(structured),
                is_error: false,
            })
        }
        .boxed()
    }
}
