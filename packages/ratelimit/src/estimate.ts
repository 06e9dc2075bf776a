// The one token estimator lives in @lb/core (lb-server and @lb/openai-adapter estimate with it too); re-exported here,
// where it has always been part of the API.
export { type EstimateOptions, estimateTokens } from '@lb/core';
