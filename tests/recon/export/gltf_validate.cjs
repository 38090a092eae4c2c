// Validate glTF/GLB files with the Khronos glTF Validator (npm package gltf-validator).
// Usage: NODE_PATH=.node/node_modules node gltf_validate.cjs FILE...
// Prints one JSON line per file: {"file", "errors", "warnings", "infos", "messages": [first 20 issues]}.
const fs = require("fs");
const validator = require("gltf-validator");

async function main() {
  let failed = false;
  for (const file of process.argv.slice(2)) {
    const report = await validator.validateBytes(new Uint8Array(fs.readFileSync(file)), { maxIssues: 100 });
    const issues = report.issues;
    console.log(JSON.stringify({
      file,
      validatorVersion: report.validatorVersion,
      errors: issues.numErrors,
      warnings: issues.numWarnings,
      infos: issues.numInfos,
      messages: issues.messages.slice(0, 20).map((m) => `${m.severity} ${m.code} ${m.pointer || ""}: ${m.message}`),
    }));
    failed = failed || issues.numErrors > 0;
  }
  process.exit(failed ? 1 : 0);
}

main().catch((e) => { console.error(String(e)); process.exit(2); });
