// Conformance checks for a Wix Loyalty emulator, driven only through Wix's
// official JavaScript SDK (@wix/sdk + @wix/loyalty).
//
// Env:
//   WIX_BASE_URL           http://127.0.0.1:PORT of the emulator (required)
//   WIX_API_KEY            value the SDK sends as the Authorization header
//   WIX_SITE_ID            value the SDK sends as the wix-site-id header
//   WIX_PUBLIC_KEY         PEM (SPKI, "-----BEGIN PUBLIC KEY-----") that verifies
//                          webhook JWTs; a one-line base64 of the PEM also works
//   WIX_WEBHOOK_BODY_FILE  file holding a signed JWT webhook body for
//                          wix.loyalty.v1.account_points_updated
//   WIX_APP_ID             optional; appId passed to AppStrategy and earnPoints
//
// Output: one JSON line per check {"check", "ok", "detail"}; exit 1 if any failed.
//
// The SDK always builds https://www.wixapis.com/<path> URLs; the custom `fetch`
// option of createClient rewrites that origin to WIX_BASE_URL.

import crypto from 'node:crypto';
import fs from 'node:fs';
import { createClient, ApiKeyStrategy, AppStrategy } from '@wix/sdk';
import { accounts, transactions, programs } from '@wix/loyalty';

const WIX_ORIGIN = 'https://www.wixapis.com';
const BASE_URL = (process.env.WIX_BASE_URL || '').replace(/\/+$/, '');
const API_KEY = process.env.WIX_API_KEY || 'test-api-key';
const SITE_ID = process.env.WIX_SITE_ID || '00000000-0000-4000-8000-000000000000';
const APP_ID = process.env.WIX_APP_ID || 'syncd-conformance';

const results = [];
function report(check, ok, detail) {
  const line = { check, ok: Boolean(ok), detail };
  results.push(line);
  console.log(JSON.stringify(line));
}

// Every request the SDK puts on the wire, for failure details.
const wire = [];
function rewritingFetch(input, init) {
  const url = String(input instanceof Request ? input.url : input);
  if (!url.startsWith(WIX_ORIGIN)) {
    throw new Error(`SDK tried to reach an unexpected origin: ${url}`);
  }
  const target = BASE_URL + url.slice(WIX_ORIGIN.length);
  wire.push({ method: init?.method ?? 'GET', path: url.slice(WIX_ORIGIN.length), body: init?.body ?? null });
  return fetch(target, init);
}
const lastWire = () => wire[wire.length - 1];

function sdkErrorSummary(e) {
  // transformError() (sdk-runtime) copies the HTTP status onto the error as
  // `status`; the raw response is also kept on `response.status`.
  return {
    status: e?.status,
    responseStatus: e?.response?.status,
    applicationError: e?.details?.applicationError,
    validationError: e?.details?.validationError,
    requestId: e?.requestId,
    cause: e?.cause ? String(e.cause.code || e.cause.message || e.cause) : undefined,
    message: typeof e?.message === 'string' ? e.message.slice(0, 500) : String(e),
  };
}

async function step(name, fn) {
  try {
    await fn();
  } catch (e) {
    report(name, false, { thrown: sdkErrorSummary(e), lastRequest: lastWire() });
  }
}

function readPublicKey() {
  let k = process.env.WIX_PUBLIC_KEY || '';
  // A PEM passed through an env file often arrives with literal "\n".
  // The SDK treats any key without a real newline as base64, so unescape.
  if (!k.includes('\n') && k.includes('\\n')) k = k.replace(/\\n/g, '\n');
  return k;
}

function tamperJwt(jwt) {
  const [h, p, s] = jwt.trim().split('.');
  const claims = JSON.parse(Buffer.from(p, 'base64url').toString('utf8'));
  if (typeof claims.data === 'string') {
    const mid = JSON.parse(claims.data);
    mid.instanceId = `${mid.instanceId ?? ''}-tampered`;
    claims.data = JSON.stringify(mid);
  } else {
    claims.tampered = true;
  }
  return `${h}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.${s}`;
}

async function main() {
  if (!BASE_URL) {
    report('config', false, 'WIX_BASE_URL is not set');
    return;
  }

  const client = createClient({
    auth: ApiKeyStrategy({ apiKey: API_KEY, siteId: SITE_ID }),
    modules: { accounts, transactions, programs },
    fetch: rewritingFetch,
  });

  let accountId;
  let acc0; // account as read in step 2

  // (1) query loyalty accounts: first page limit 2, then follow the cursor.
  await step('query_accounts_paging', async () => {
    const page1 = await client.accounts.queryLoyaltyAccounts().limit(2).find();
    const req1 = JSON.parse(lastWire().body);
    const ids1 = page1.items.map((a) => a._id);
    const detail = { page1Count: ids1.length, page1HasNext: page1.hasNext(), nextCursor: page1.cursors?.next, request1: req1 };
    if (ids1.length === 0) {
      report('query_accounts_paging', false, { ...detail, reason: 'no accounts returned; seed at least 3' });
      return;
    }
    accountId = ids1[0];
    if (!page1.hasNext()) {
      report('query_accounts_paging', false, { ...detail, reason: 'page 1 has no pagingMetadata.cursors.next; seed at least 3 accounts' });
      return;
    }
    const page2 = await page1.next();
    const req2 = JSON.parse(lastWire().body);
    const ids2 = page2.items.map((a) => a._id);
    const overlap = ids2.filter((id) => ids1.includes(id));
    const ok = ids1.length === 2
      && req1?.query?.cursorPaging?.limit === 2
      && req2?.query?.cursorPaging?.cursor === page1.cursors.next
      && ids2.length > 0
      && overlap.length === 0
      && ids1.concat(ids2).every((id) => typeof id === 'string' && id.length > 0);
    report('query_accounts_paging', ok, { ...detail, request2: req2, page2Count: ids2.length, page2HasNext: page2.hasNext(), overlap });
  });

  if (!accountId) {
    report('get_account', false, 'skipped: no account id from query');
  } else {
    // (2) get one account by id.
    await step('get_account', async () => {
      const a = await client.accounts.getAccount(accountId);
      acc0 = a;
      const ok = a?._id === accountId
        && typeof a.revision === 'string' && /^\d+$/.test(a.revision)
        && typeof a.points?.balance === 'number'
        && typeof a.contactId === 'string';
      report('get_account', ok, {
        request: lastWire(),
        _id: a?._id,
        revision: a?.revision,
        revisionType: typeof a?.revision,
        points: a?.points,
        createdDateIsDate: a?._createdDate instanceof Date,
      });
    });
  }

  // (3) adjust points with the current revision: +5 and a description.
  let oldRevision;
  if (acc0) {
    await step('adjust_points_with_revision', async () => {
      oldRevision = acc0.revision;
      const before = acc0.points.balance;
      const res = await client.accounts.adjustPoints(accountId, {
        amount: 5,
        revision: oldRevision,
        description: 'syncd conformance +5',
      });
      const sent = JSON.parse(lastWire().body);
      const after = await client.accounts.getAccount(accountId);
      const ok = res?.account?.points?.balance === before + 5
        && after.points.balance === before + 5
        && BigInt(res.account.revision) > BigInt(oldRevision)
        && after.revision === res.account.revision
        && typeof res.transactionId === 'string' && res.transactionId.length > 0;
      report('adjust_points_with_revision', ok, {
        sent,
        balanceBefore: before,
        balanceAfter: after.points.balance,
        revisionBefore: oldRevision,
        revisionAfter: res?.account?.revision,
        transactionId: res?.transactionId,
      });
    });
  } else {
    report('adjust_points_with_revision', false, 'skipped: no account from get_account');
  }

  // (4) adjust again with the OLD revision: expect an HTTP 409 surfaced on the SDK error.
  if (acc0 && oldRevision) {
    await step('adjust_points_stale_revision', async () => {
      const before = (await client.accounts.getAccount(accountId)).points.balance;
      let err = null;
      try {
        await client.accounts.adjustPoints(accountId, {
          amount: 5,
          revision: oldRevision,
          description: 'syncd conformance stale',
        });
      } catch (e) {
        err = e;
      }
      const after = (await client.accounts.getAccount(accountId)).points.balance;
      if (!err) {
        report('adjust_points_stale_revision', false, { reason: 'no error thrown for stale revision', balanceBefore: before, balanceAfter: after });
        return;
      }
      const s = sdkErrorSummary(err);
      report('adjust_points_stale_revision', s.status === 409 && after === before, {
        statusLocation: 'error.status (also error.response.status)',
        ...s,
        balanceBefore: before,
        balanceAfter: after,
      });
    });
  } else {
    report('adjust_points_stale_revision', false, 'skipped: step 3 prerequisites missing');
  }

  // (5) earn points twice with the same idempotencyKey.
  if (accountId) {
    await step('earn_points_idempotent', async () => {
      const before = (await client.accounts.getAccount(accountId)).points.balance;
      const idempotencyKey = crypto.randomUUID();
      const opts = { amount: 7, appId: APP_ID, idempotencyKey, description: 'syncd conformance earn' };
      const r1 = await client.accounts.earnPoints(accountId, opts);
      const sent = JSON.parse(lastWire().body);
      const r2 = await client.accounts.earnPoints(accountId, opts);
      const after = (await client.accounts.getAccount(accountId)).points.balance;
      const ok = after === before + 7
        && typeof r1?.transactionId === 'string' && r1.transactionId.length > 0
        && r1.transactionId === r2?.transactionId;
      report('earn_points_idempotent', ok, {
        sent,
        balanceBefore: before,
        balanceAfter: after,
        transactionId1: r1?.transactionId,
        transactionId2: r2?.transactionId,
        balanceInResponse1: r1?.account?.points?.balance,
        balanceInResponse2: r2?.account?.points?.balance,
      });
    });
  } else {
    report('earn_points_idempotent', false, 'skipped: no account id');
  }

  // (6) webhooks: verify + dispatch a signed JWT to onAccountPointsUpdated.
  const file = process.env.WIX_WEBHOOK_BODY_FILE;
  const publicKey = readPublicKey();
  if (!file || !publicKey) {
    report('webhook_process', false, 'WIX_WEBHOOK_BODY_FILE and WIX_PUBLIC_KEY must be set');
    report('webhook_tampered_rejected', false, 'skipped: WIX_WEBHOOK_BODY_FILE and WIX_PUBLIC_KEY must be set');
    return;
  }
  const body = fs.readFileSync(file, 'utf8');
  // AppStrategy is the strategy that implements decodeJWT (ApiKeyStrategy does not);
  // appSecret is not needed just to verify webhooks.
  const hookClient = () => createClient({
    auth: AppStrategy({ appId: APP_ID, publicKey }),
    modules: { accounts },
  });

  await step('webhook_process', async () => {
    const c = hookClient();
    const events = [];
    c.accounts.onAccountPointsUpdated((event) => {
      events.push(event);
    });
    const ret = await c.webhooks.process(body);
    const ev = events[0];
    const acct = ev?.data?.account;
    const ok = events.length === 1
      && ret.eventType === 'wix.loyalty.v1.account_points_updated'
      && typeof acct?._id === 'string' && acct._id.length > 0
      && typeof acct?.points?.balance === 'number'
      && typeof acct?.revision === 'string'
      && ev.metadata?.entityFqdn === 'wix.loyalty.v1.account';
    report('webhook_process', ok, {
      handlerCalls: events.length,
      eventType: ret.eventType,
      instanceId: ret.instanceId,
      identity: ret.identity,
      accountId: acct?._id,
      balance: acct?.points?.balance,
      revision: acct?.revision,
      metadata: ev?.metadata,
    });
  });

  // Tampered copy: same signature, modified claims -> must be rejected and not dispatched.
  await step('webhook_tampered_rejected', async () => {
    const c = hookClient();
    const events = [];
    c.accounts.onAccountPointsUpdated((event) => {
      events.push(event);
    });
    let rejected = null;
    try {
      await c.webhooks.process(tamperJwt(body));
    } catch (e) {
      rejected = e;
    }
    report('webhook_tampered_rejected', rejected !== null && events.length === 0, {
      handlerCalls: events.length,
      error: rejected ? { message: String(rejected.message).slice(0, 200), code: rejected.code } : null,
    });
  });
}

try {
  await main();
} catch (e) {
  report('unexpected', false, sdkErrorSummary(e));
}
const failed = results.filter((r) => !r.ok).length;
console.log(JSON.stringify({ summary: true, passed: results.length - failed, failed }));
process.exitCode = failed > 0 ? 1 : 0;
