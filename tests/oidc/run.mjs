// CI: smartcar-mcp as an OAuth resource server against a real OpenID provider, all on 127.0.0.1.
// npm oidc-provider issues JWT access tokens for this server's resource (RFC 8707 resource
// indicators) after a scripted authorization-code + PKCE flow through its dev login and consent
// pages; the official TypeScript SDK client then opens an MCP session with that token and must
// list only driver A's vehicles. Usage: node tests/oidc/run.mjs path/to/smartcar-mcp
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import net from 'node:net';

import Provider from 'oidc-provider';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';

const binary = process.argv[2];
assert.ok(binary, 'usage: node tests/oidc/run.mjs path/to/smartcar-mcp');

// The simulator's seeded fleet: Alice has two cars, Bob one.
const ALICE = 'usr-alice-01';
const ALICE_CARS = ['veh-ev-0001', 'veh-phev-0002'];
const BOB_CAR = 'veh-ice-0003';

async function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

const asPort = await freePort();
const mcpPort = await freePort();
const ISSUER = `http://127.0.0.1:${asPort}`;
const RESOURCE = `http://127.0.0.1:${mcpPort}/mcp`;
const REDIRECT = 'http://127.0.0.1:1/callback'; // never fetched: the code is read off the Location

// --- The authorization server ------------------------------------------------------------------
const signingKey = (type, opts, alg) => {
  const { privateKey } = crypto.generateKeyPairSync(type, opts);
  return { ...privateKey.export({ format: 'jwk' }), kid: `${alg}-ci`, alg, use: 'sig' };
};
// Which Smartcar users each login acts for: what an app's authorization server records when
// Smartcar Connect hands it the driver's user_id.
const smartcarUsers = { 'driver-A': [ALICE] };

const provider = new Provider(ISSUER, {
  clients: [{
    client_id: 'mcp-ci',
    token_endpoint_auth_method: 'none',
    redirect_uris: [REDIRECT],
    grant_types: ['authorization_code'],
    response_types: ['code'],
  }],
  jwks: {
    keys: [
      signingKey('rsa', { modulusLength: 2048 }, 'RS256'),
      signingKey('ec', { namedCurve: 'P-256' }, 'ES256'),
    ],
  },
  scopes: ['openid', 'vehicle:read', 'vehicle:command', 'vehicle:unlock', 'account:delete'],
  findAccount: (ctx, id) => ({ accountId: id, claims: () => ({ sub: id }) }),
  features: {
    devInteractions: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => RESOURCE,
      useGrantedResource: () => true,
      getResourceServerInfo: (ctx, indicator) => {
        assert.equal(indicator, RESOURCE, 'tokens only for smartcar-mcp');
        return {
          scope: 'vehicle:read vehicle:command vehicle:unlock account:delete',
          audience: RESOURCE,
          accessTokenFormat: 'jwt',
          accessTokenTTL: 600,
          jwt: { sign: { alg: 'ES256' } },
        };
      },
    },
  },
  extraTokenClaims: (ctx, token) =>
    token.kind === 'AccessToken' ? { smartcar_user_id: smartcarUsers[token.accountId] ?? [] } : undefined,
});
const asServer = provider.listen(asPort, '127.0.0.1');

// --- smartcar-mcp ------------------------------------------------------------------------------
const server = spawn(binary, [
  'serve', '--http', `127.0.0.1:${mcpPort}`, '--simulator', '--audit-db', 'off',
  '--oauth-issuer', ISSUER, '--oauth-resource', RESOURCE,
], { stdio: ['ignore', 'inherit', 'pipe'], env: { ...process.env, RUST_LOG: 'info' } });
let serverLog = '';
server.stderr.on('data', (d) => { serverLog += d; });
const cleanUp = () => { server.kill('SIGTERM'); asServer.close(); };

async function until(what, check) {
  for (let i = 0; i < 200; i++) {
    try { if (await check()) return; } catch { /* not up yet */ }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${what} did not come up; server log:\n${serverLog}`);
}

try {
  await until('smartcar-mcp', async () => (await fetch(`http://127.0.0.1:${mcpPort}/healthz`)).ok);

  // Without a token: 401 pointing at the metadata, which names the provider.
  const bare = await fetch(RESOURCE, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
  assert.equal(bare.status, 401);
  const challenge = bare.headers.get('www-authenticate');
  const metadataUrl = /resource_metadata="([^"]+)"/.exec(challenge)?.[1];
  assert.ok(metadataUrl, challenge);
  const metadata = await (await fetch(metadataUrl)).json();
  assert.equal(metadata.resource, RESOURCE);
  assert.deepEqual(metadata.authorization_servers, [ISSUER]);

  // --- Authorization code + PKCE, through the provider's dev login and consent pages ------------
  const jar = new Map();
  const remember = (res) => {
    for (const c of res.headers.getSetCookie()) {
      const [pair] = c.split(';');
      const i = pair.indexOf('=');
      jar.set(pair.slice(0, i), pair.slice(i + 1));
    }
  };
  const cookies = () => [...jar].map(([k, v]) => `${k}=${v}`).join('; ');
  const step = async (url, init = {}) => {
    const res = await fetch(new URL(url, ISSUER), {
      ...init, redirect: 'manual', headers: { ...(init.headers ?? {}), cookie: cookies() },
    });
    remember(res);
    return res;
  };
  const verifier = crypto.randomBytes(32).toString('base64url');
  const challengeS256 = crypto.createHash('sha256').update(verifier).digest('base64url');
  const auth = new URL('/auth', ISSUER);
  Object.entries({
    client_id: 'mcp-ci', response_type: 'code', redirect_uri: REDIRECT,
    scope: 'openid vehicle:read', resource: RESOURCE, state: 's1',
    code_challenge: challengeS256, code_challenge_method: 'S256',
  }).forEach(([k, v]) => auth.searchParams.set(k, v));
  let res = await step(auth);
  let code;
  for (let hops = 0; hops < 10 && !code; hops++) {
    assert.ok([302, 303].includes(res.status), `hop ${hops}: ${res.status} ${await res.text()}`);
    const location = new URL(res.headers.get('location'), ISSUER);
    if (location.href.startsWith(REDIRECT)) {
      assert.equal(location.searchParams.get('state'), 's1');
      code = location.searchParams.get('code');
      assert.ok(code, location.href);
      break;
    }
    if (location.pathname.startsWith('/interaction/')) {
      const page = await (await step(location)).text();
      const prompt = page.includes('name="login"') ? 'login' : 'consent';
      const form = new URLSearchParams({ prompt, ...(prompt === 'login' ? { login: 'driver-A', password: 'any' } : {}) });
      res = await step(location, {
        method: 'POST', body: form, headers: { 'content-type': 'application/x-www-form-urlencoded' },
      });
    } else {
      res = await step(location);
    }
  }
  assert.ok(code, 'the flow ended with a code');
  const tokenRes = await fetch(new URL('/token', ISSUER), {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      grant_type: 'authorization_code', code, redirect_uri: REDIRECT, client_id: 'mcp-ci',
      code_verifier: verifier, resource: RESOURCE,
    }),
  });
  const tokens = await tokenRes.json();
  assert.equal(tokenRes.status, 200, JSON.stringify(tokens));
  const [header, claims] = tokens.access_token.split('.').slice(0, 2)
    .map((p) => JSON.parse(Buffer.from(p, 'base64url')));
  assert.equal(header.typ, 'at+jwt');
  assert.equal(claims.aud, RESOURCE);
  assert.deepEqual(claims.smartcar_user_id, [ALICE]);
  console.log(`oidc-provider issued an ${header.alg} at+jwt for sub=${claims.sub} scope="${claims.scope}"`);

  // --- The official TypeScript client with that token -------------------------------------------
  const client = new Client({ name: 'oidc-ci', version: '1.0.0' });
  const transport = new StreamableHTTPClientTransport(new URL(RESOURCE), {
    requestInit: { headers: { Authorization: `Bearer ${tokens.access_token}` } },
  });
  await client.connect(transport);
  const { tools } = await client.listTools();
  const names = tools.map((t) => t.name);
  assert.ok(names.includes('list_connections'), names.join(','));
  assert.ok(!names.includes('unlock_vehicle'), `vehicle:read only, yet listed: ${names.join(',')}`);
  const listed = await client.callTool({ name: 'list_connections', arguments: {} });
  const text = JSON.stringify(listed.structuredContent);
  assert.ok(!listed.isError, text);
  for (const car of ALICE_CARS) assert.ok(text.includes(car), `${car} missing: ${text}`);
  assert.ok(!text.includes(BOB_CAR), `driver B's car listed to driver A: ${text}`);
  const theirs = await client.callTool({ name: 'get_vehicle', arguments: { vehicle_id: BOB_CAR } });
  assert.equal(theirs.isError, true);
  assert.equal(theirs.structuredContent.error.type, 'FORBIDDEN');
  await client.close();
  assert.ok(!serverLog.includes(tokens.access_token), 'the access token reached the log');
  console.log(`MCP session with the provider's token: ${ALICE_CARS.join(', ')} listed, ${BOB_CAR} refused`);
} finally {
  cleanUp();
}
