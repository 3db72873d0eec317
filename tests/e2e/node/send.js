// Sends events to Switchyard with the REAL @segment/analytics-node library.
// Usage: node send.js '<json>' where json = {host, writeKey, runId, count, flushAt}
// Sends `count` rounds of identify/track/page/screen/group/alias, each with a known messageId
// and properties.seq / traits.seq, then closeAndFlush(). Prints one JSON line:
// {"sent":[{"messageId","type","seq"}...],"errors":[...],"version":"x.y.z"}; exits 1 on any error.
'use strict';
const { Analytics } = require('@segment/analytics-node');

async function main() {
  const opts = JSON.parse(process.argv[2]);
  const analytics = new Analytics({
    writeKey: opts.writeKey,
    host: opts.host,
    flushAt: opts.flushAt || 15,
    flushInterval: 500,
    maxRetries: 3,
    httpRequestTimeout: 10000,
  });
  const sent = [];
  const errors = [];
  analytics.on('error', (err) => errors.push(String((err && err.code) || err)));
  const pending = [];
  let seq = 0;
  const send = (type, params) => {
    const s = seq++;
    const messageId = `${opts.runId}-node-${s}`;
    params.messageId = messageId;
    if (type === 'identify' || type === 'group') params.traits = { ...(params.traits || {}), seq: s };
    else if (type !== 'alias') params.properties = { ...(params.properties || {}), seq: s };
    sent.push({ messageId, type, seq: s });
    pending.push(new Promise((resolve) => {
      analytics[type](params, (err) => {
        if (err) errors.push(`${type} ${messageId}: ${String((err && err.code) || err)}`);
        resolve();
      });
    }));
  };
  for (let i = 0; i < (opts.count || 1); i++) {
    const userId = `${opts.runId}-user-${i}`;
    send('identify', { userId, traits: { email: `u${i}@example.com` } });
    send('track', { userId, event: 'Order Completed', properties: { revenue: 9.99 } });
    send('track', { anonymousId: `${opts.runId}-anon-${i}`, event: 'Viewed' });
    send('page', { userId, category: 'Docs', name: 'Install', properties: { path: '/install' } });
    send('screen', { userId, name: 'Home' });
    send('group', { userId, groupId: `${opts.runId}-org-${i}`, traits: { plan: 'pro' } });
    send('alias', { userId, previousId: `${opts.runId}-anon-${i}` });
  }
  await analytics.closeAndFlush({ timeout: 20000 });
  await Promise.all(pending);
  process.stdout.write(JSON.stringify({ sent, errors, version: analytics.VERSION }) + '\n');
  process.exit(errors.length ? 1 : 0);
}

main().catch((e) => {
  process.stdout.write(JSON.stringify({ sent: [], errors: [String(e && e.stack || e)] }) + '\n');
  process.exit(1);
});
