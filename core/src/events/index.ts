/** Event triggers: checking and matching EventBridge-style event patterns. */
export { matchesEvent } from "./match.ts";
export { checkEventPattern, EventPatternError, patternOfMatchers } from "./pattern.ts";
export { activeEventTriggers, dispatchEvent, eventTriggersWithToken, type DispatchResult } from "./dispatch.ts";
