// openapi.mjs: validates the gateway's GET /openapi.json as an OpenAPI 3.1
// document (@seriousme/openapi-schema-validator) and checks what its request
// schemas mean with a JSON Schema 2020-12 validator (ajv).
//
//   GATEWAY_URL=http://127.0.0.1:5000 node openapi.mjs [rpc...]
//
// Every rpc named must have a POST operation whose example fits its request
// schema. For greeting_service.hello, sample bodies are checked against it.
// Exits 1 on a failed check.
import assert from "node:assert/strict";
import { Validator } from "@seriousme/openapi-schema-validator";
import Ajv2020 from "ajv/dist/2020.js";

const base = process.env.GATEWAY_URL || "http://127.0.0.1:5000";
const rpcs = process.argv.slice(2);

const resp = await fetch(`${base}/openapi.json`);
assert.equal(resp.status, 200);
const doc = await resp.json();

const validator = new Validator();
const res = await validator.validate(structuredClone(doc));
if (!res.valid) {
  console.error(JSON.stringify(res.errors, null, 2));
  process.exit(1);
}
assert.equal(validator.version, "3.1");

for (const rpc of rpcs) {
  const op = doc.paths[`/${rpc}`]?.post;
  assert.ok(op, `no POST /${rpc} in ${Object.keys(doc.paths)}`);
  assert.equal(op.operationId, rpc);
  for (const code of ["200", "400", "404", "413", "500", "503", "504"])
    assert.ok(op.responses[code], `${rpc}: no ${code} response`);
}

// What the schemas accept, with $refs resolved by ajv.
const ajv = new Ajv2020({ strict: false });
ajv.addSchema({ $id: "doc", components: doc.components });
const refs = (s) => JSON.parse(JSON.stringify(s).replaceAll('"#/components/', '"doc#/components/'));
// Every rpc's example body is one its own schema accepts.
for (const rpc of rpcs) {
  const content = doc.paths[`/${rpc}`].post.requestBody.content["application/json"];
  const accepts = ajv.compile(content.schema);
  assert.ok(accepts(content.example), `${rpc}: example ${JSON.stringify(content.example)} ` +
    `does not fit its schema: ${ajv.errorsText(accepts.errors)}`);
}
const hello = doc.paths["/greeting_service.hello"]?.post;
if (hello) {
  const request = ajv.compile(hello.requestBody.content["application/json"].schema);
  const good = [
    [["Bob"], { last_name: "Ross" }],
    [["Bob", "Ross"]],
    [[], { first_name: "Bob", last_name: "Ross" }],
    [],
    { first_name: "Bob" },
  ];
  const bad = [
    [[1]],
    [["Bob"], { nickname: "B" }],
    [["Bob", "Ross", "extra"]],
    { last_name: "Ross" },
    "Bob",
  ];
  for (const b of good) assert.ok(request(b), `should accept ${JSON.stringify(b)}: ${ajv.errorsText(request.errors)}`);
  for (const b of bad) assert.ok(!request(b), `should refuse ${JSON.stringify(b)}`);
  assert.ok(request(hello.requestBody.content["application/json"].example), "the example is valid");

  const reply = ajv.compile(refs(hello.responses["200"].content["application/json"].schema));
  assert.ok(reply([["Hello, Bob Ross"], {}]));
  assert.ok(!reply({ error: {} }));
  const error = ajv.compile(refs(doc.components.responses.BadRequest.content["application/json"].schema));
  assert.ok(error({ error: { code: 400, type: "invalid_argument", message: "x" } }));
  assert.ok(!error({ error: { code: 400 } }));
}
console.log(JSON.stringify({ valid: true, version: validator.version, paths: Object.keys(doc.paths).length }));
