// Verifies webhook deliveries with the Standard Webhooks reference library
// (npm standardwebhooks), not with imaged's own code. Reads a JSON array of
// {secret, headers, body} on stdin; prints a JSON array with, for each, null
// when the library accepts it or the library's error message.
const { Webhook } = require("standardwebhooks");

let input = "";
process.stdin.setEncoding("utf8");
process.stdin.on("data", (c) => (input += c));
process.stdin.on("end", () => {
  const out = JSON.parse(input).map(({ secret, headers, body }) => {
    try {
      new Webhook(secret).verify(body, headers);
      return null;
    } catch (e) {
      return String(e.message || e);
    }
  });
  process.stdout.write(JSON.stringify(out));
});
