// Checks recorded HTTP answers against the OpenAPI document the node serves.
//   node validate.mjs SPEC.json EXCHANGES.jsonl
// 1. The document itself against the OpenAPI 3.1 schema
//    (@seriousme/openapi-schema-validator).
// 2. Each exchange ({method, route, status, contentType, headers, body}):
//    the operation documents the status; a body has a documented media type
//    and validates against its schema (Ajv, JSON Schema 2020-12, the dialect
//    of OpenAPI 3.1); documented required headers are present.
// Prints every failure and exits 1 if there is any.
import { readFileSync } from "node:fs";
import { Validator } from "@seriousme/openapi-schema-validator";
import Ajv2020 from "ajv/dist/2020.js";
import addFormats from "ajv-formats";

const [specPath, exchangesPath] = process.argv.slice(2);
const spec = JSON.parse(readFileSync(specPath, "utf8"));
const failures = [];

const docCheck = await new Validator().validate(spec);
if (!docCheck.valid) failures.push(`the document is not valid OpenAPI 3.1: ${JSON.stringify(docCheck.errors).slice(0, 2000)}`);

const ajv = new Ajv2020({ strict: false, allErrors: true });
addFormats(ajv);
ajv.addSchema({ $id: "spec", components: spec.components });
const refTo = (schema) => JSON.parse(JSON.stringify(schema).replaceAll('"#/components/', '"spec#/components/'));
const deref = (obj) => {
  while (obj && obj.$ref) obj = obj.$ref.replace("#/", "").split("/").reduce((o, k) => o[k], spec);
  return obj;
};
const compiled = new Map();
const validatorFor = (schema) => {
  const key = JSON.stringify(schema);
  if (!compiled.has(key)) compiled.set(key, ajv.compile(refTo(schema)));
  return compiled.get(key);
};

const lines = readFileSync(exchangesPath, "utf8").split("\n").filter(Boolean);
const seen = new Set();
for (const line of lines) {
  const x = JSON.parse(line);
  const label = `${x.method} ${x.route} -> ${x.status} (${x.label || ""})`;
  const op = spec.paths[x.route]?.[x.method.toLowerCase() === "head" ? "get" : x.method.toLowerCase()];
  if (!op) {
    // 405 answers a method the path does not have: documented by the path's methods.
    if (!(x.status === 405 && spec.paths[x.route])) failures.push(`${label}: no such operation in the document`);
    continue;
  }
  seen.add(`${x.method} ${x.route} ${x.status}`);
  const response = deref(op.responses[String(x.status)] ?? op.responses[`${String(x.status)[0]}XX`] ?? op.responses.default);
  if (!response) {
    failures.push(`${label}: status not documented (documented: ${Object.keys(op.responses).join(", ")})`);
    continue;
  }
  for (const [name, h] of Object.entries(response.headers ?? {})) {
    const header = deref(h);
    if (header.required && !(name.toLowerCase() in x.headers)) failures.push(`${label}: required header ${name} missing`);
  }
  if (!x.body) {
    if (response.content && x.method !== "HEAD" && x.status !== 304 && x.status !== 204)
      failures.push(`${label}: documented with a body, answered without one`);
    continue;
  }
  const mediaType = (x.contentType || "").split(";")[0].trim();
  const media = response.content?.[x.contentType] ??
    response.content?.[mediaType] ??
    Object.entries(response.content ?? {}).find(([k]) => k.split(";")[0].trim() === mediaType)?.[1];
  if (!media) {
    failures.push(`${label}: media type '${mediaType}' not documented (documented: ${Object.keys(response.content ?? {}).join(", ") || "no body"})`);
    continue;
  }
  if (!media.schema || !mediaType.includes("json")) continue;
  let body;
  try {
    body = JSON.parse(x.body);
  } catch {
    failures.push(`${label}: the body is not JSON`);
    continue;
  }
  const validate = validatorFor(media.schema);
  if (!validate(body))
    failures.push(`${label}: ${ajv.errorsText(validate.errors, { separator: "; " }).slice(0, 600)} in ${x.body.slice(0, 300)}`);
}

for (const f of failures) console.log("FAIL " + f);
console.log(`${lines.length} answers of ${new Set(lines.map((l) => { const x = JSON.parse(l); return x.method + " " + x.route; })).size} operations checked against ${specPath}: ${failures.length} failures`);
process.exit(failures.length ? 1 : 0);
