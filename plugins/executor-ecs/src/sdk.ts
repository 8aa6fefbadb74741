/**
 * The AWS SDK clients the executor uses, in a module of their own so that index.ts loads them
 * only when an ECS block actually runs: importing them costs about half a second, which every
 * `kiln` command (and every local `kiln run-block` process) would otherwise pay.
 */
export { CloudWatchLogsClient, GetLogEventsCommand } from "@aws-sdk/client-cloudwatch-logs";
export { DescribeTasksCommand, ECSClient, RunTaskCommand, StopTaskCommand } from "@aws-sdk/client-ecs";
