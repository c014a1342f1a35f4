// tests/integration/clients/sprites-sdk.mjs -- the official Sprites SDK (@fly/sprites) against
// a Sprites API (the project's fake in test 8400). One JSON line per call on stdout:
// {"call": ..., "ok": true|false, ...what the SDK returned or threw}; the test judges them.
// Environment: SPRITES_SDK (the package's directory), SPRITES_API_URL, SPRITES_TOKEN,
// SPRITE_NAME (a sprite this script creates and deletes), HOME_MARK (a file name).
import { pathToFileURL } from 'node:url';

const sdk = await import(pathToFileURL(`${process.env.SPRITES_SDK}/dist/index.js`).href);
const { SpritesClient, APIError, ExecError } = sdk;
const client = new SpritesClient(process.env.SPRITES_TOKEN, { baseURL: process.env.SPRITES_API_URL });
const name = process.env.SPRITE_NAME;

function report(call, ok, fields) {
    process.stdout.write(JSON.stringify({ call, ok, ...fields }) + '\n');
}

function thrown(e) {
    const out = { error: String(e && e.message) };
    if (e instanceof APIError) {
        Object.assign(out, {
            status: e.statusCode, code: e.errorCode, retryAfter: e.getRetryAfterSeconds(),
            rateLimited: e.isRateLimitError(),
        });
    }
    if (e instanceof ExecError) Object.assign(out, e.result);
    return out;
}

// Run one call: its result (mapped by show) or what it threw, as a line.
async function call(label, fn, show = (v) => ({ value: v })) {
    try {
        const v = await fn();
        report(label, true, show(v));
        return v;
    } catch (e) {
        report(label, false, thrown(e));
        return undefined;
    }
}

async function spawnWithStdin(sprite, input) {
    const cmd = sprite.spawn('sh', ['-c', 'cat; echo done >&2'], {});
    const out = [], err = [];
    cmd.stdout.on('data', (c) => out.push(c));
    cmd.stderr.on('data', (c) => err.push(c));
    await new Promise((resolve, reject) => { cmd.once('spawn', resolve); cmd.once('error', reject); });
    cmd.stdin.write(input);
    cmd.stdin.end();
    const code = await cmd.wait();
    return { exitCode: code, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() };
}

async function killed(sprite) {
    const cmd = sprite.spawn('sleep', ['30'], {});
    await new Promise((resolve, reject) => { cmd.once('spawn', resolve); cmd.once('error', reject); });
    const t0 = Date.now();
    cmd.kill('SIGKILL');
    const code = await cmd.wait();
    return { exitCode: code, ms: Date.now() - t0 };
}

async function drain(stream) {
    const msgs = [];
    for await (const m of stream) msgs.push(m);
    return msgs;
}

// After a restore the sprite restarts (asynchronously): exec until it answers again.
async function execWhenBack(sprite, file, args, deadlineMs) {
    const end = Date.now() + deadlineMs;
    let tries = 0;
    for (;;) {
        tries++;
        try {
            const r = await sprite.execFile(file, args);
            return { ...r, tries };
        } catch (e) {
            if (e instanceof ExecError || Date.now() > end) throw e;
            await new Promise((r) => setTimeout(r, 200));
        }
    }
}

const mark = process.env.HOME_MARK;
const sprite = await call('createSprite', () => client.createSprite(name),
    (s) => ({ name: s.name, status: s.status, id: s.id, created: s.createdAt instanceof Date && !isNaN(s.createdAt) }));
if (!sprite) process.exit(0);
await call('createSprite again', () => client.createSprite(name));
await call('getSprite', () => client.getSprite(name), (s) => ({ name: s.name, status: s.status, org: s.organizationName }));
await call('listSprites', () => client.listSprites({ prefix: name, maxResults: 1 }),
    (l) => ({ names: l.sprites.map((s) => s.name), hasMore: l.hasMore }));
await call('listAllSprites', () => client.listAllSprites('sdk-'), (l) => ({ names: l.map((s) => s.name) }));

await call('execFile exit 0', () => sprite.execFile('sh', ['-c', 'echo out; echo err >&2']));
await call('execFile exit 3', () => sprite.execFile('sh', ['-c', 'echo out; echo err >&2; exit 3']));
await call('exec', () => sprite.exec('echo  a   b'));
await call('execFile env and cwd', () => sprite.execFile('sh', ['-c', `echo "$GREETING"; echo here > ${mark}`],
    { env: { GREETING: 'hi there', PATH: '/usr/bin:/bin' }, cwd: '/home/sprite' }));
await call('spawn with stdin', () => spawnWithStdin(sprite, 'line one\nline two\n'), (v) => v);
await call('kill', () => killed(sprite), (v) => v);
await call('execFile missing', () => sprite.execFile('/nonexistent/tool', []));

const rules = [{ action: 'allow', domain: 'example.com' }, { action: 'allow', domain: '*.example.com' },
    { include: 'defaults' }, { action: 'deny', domain: '*' }];
await call('updateNetworkPolicy', () => sprite.updateNetworkPolicy({ rules }));
await call('getNetworkPolicy', () => sprite.getNetworkPolicy());
await call('updateNetworkPolicy invalid', () => sprite.updateNetworkPolicy({ rules: [{ action: 'maybe', domain: 'x' }] }));

await sprite.execFile('sh', ['-c', 'echo before > state']);
await call('createCheckpoint', async () => drain(await sprite.createCheckpoint('sdk checkpoint')));
const list = await call('listCheckpoints', () => sprite.listCheckpoints(),
    (l) => ({ value: l.map((c) => ({ id: c.id, comment: c.comment, createTime: c.createTime instanceof Date && !isNaN(c.createTime) })) }));
const cp = (list || []).find((c) => c.comment === 'sdk checkpoint');
await call('getCheckpoint', () => sprite.getCheckpoint(cp ? cp.id : 'none'),
    (c) => ({ id: c.id, comment: c.comment }));
await call('getCheckpoint missing', () => sprite.getCheckpoint('v999'));
await sprite.execFile('sh', ['-c', 'echo after > state; echo junk > junk']);
await call('restoreCheckpoint', async () => drain(await sprite.restoreCheckpoint(cp ? cp.id : 'none')));
await call('exec after restore', () => execWhenBack(sprite, 'sh', ['-c', 'cat state; ls'], 30000));
await call('restoreCheckpoint missing', async () => drain(await sprite.restoreCheckpoint('v999')));

await call('deleteSprite', () => client.deleteSprite(name));
await call('getSprite deleted', () => client.getSprite(name));
await call('execFile deleted', () => sprite.execFile('true', []));
