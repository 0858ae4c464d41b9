// The Event Logger's API from TypeScript. `pulumi package add ../../components` generates the
// SDK imported below from the component's schema; codePath is resolved against this folder.
//
// tests/test_schema.py reads the object literal passed to `new VersionedLambdaApi(...)` and
// checks every property against components/schema.json: keep it a literal of strings, numbers,
// booleans, arrays, objects and plain references such as `table.arn` (no spreads, calls or
// template strings, which that check refuses to guess about).
import * as aws from "@pulumi/aws";
import { VersionedLambdaApi } from "@pulumi/versioned-lambda-api";

const table = new aws.dynamodb.Table("events", {
    billingMode: "PAY_PER_REQUEST",
    hashKey: "pk",
    rangeKey: "sk",
    attributes: [
        { name: "pk", type: "S" },
        { name: "sk", type: "S" },
    ],
    pointInTimeRecovery: { enabled: true },
    ttl: { attributeName: "expiresAt", enabled: true },
});

const api = new VersionedLambdaApi("api", {
    codePath: "../../function",
    handler: "handler.handler",
    memorySize: 256,
    timeout: 10,
    environment: {
        TABLE_NAME: table.name,
    },
    policyStatements: [
        { actions: ["dynamodb:PutItem", "dynamodb:Query"], resources: [table.arn] },
    ],
    routes: [
        { path: "events", method: "POST" },
        { path: "events", method: "GET" },
    ],
    stages: [
        { name: "dev", alias: "dev" },
        // The live alias stays on version 1 while 10% of requests try the newest version.
        { name: "prod", alias: "prod", canaryPercent: 10, stableVersion: 1, canaryMode: "stage" },
    ],
});

export const stageUrls = api.stageUrls;
export const newestVersion = api.newestVersion;
export const apiKeys = api.apiKeys;
