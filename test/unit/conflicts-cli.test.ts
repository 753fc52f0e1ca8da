// The conflict verbs reject bad flags before they talk to the agent.
import t from 'tap';
import { conflictVerbs } from '../../src/cli/conflicts.js';

function verb(name: string) {
  const v = conflictVerbs.find((x) => x.words.join(' ') === name);
  if (!v) throw new Error(`no verb ${name}`);
  return v;
}

t.test('bad flags are INVALID_ARGUMENT with a precise message', async (t) => {
  const sock = ['--socket', '/nonexistent/bw.sock'];
  await t.rejects(verb('probe').run([...sock]), {
    code: 'INVALID_ARGUMENT',
    message: '--ip is required',
  });
  await t.rejects(verb('probe').run(['--ip', '10.8.64', ...sock]), {
    code: 'INVALID_ARGUMENT',
    message: '--ip "10.8.64": expected an IPv4 address',
  });
  await t.rejects(verb('probe').run(['--ip', '10.8.64.2', '--timeout-ms', 'soon', ...sock]), {
    code: 'INVALID_ARGUMENT',
    message: /--timeout-ms "soon"/,
  });
  await t.rejects(verb('conflicts').run(['--bogus', ...sock]), {
    code: 'INVALID_ARGUMENT',
    message: /Unknown option '--bogus'/,
  });
  await t.rejects(verb('conflicts').run(['-o', 'yaml', ...sock]), { code: 'INVALID_ARGUMENT' });
  await t.rejects(verb('watch').run(['extra', ...sock]), { code: 'INVALID_ARGUMENT' });
});

t.test('good flags reach the socket (and report an unreachable agent)', async (t) => {
  const sock = ['--socket', '/nonexistent/bw.sock'];
  await t.rejects(verb('conflicts').run(['--all', ...sock]), { code: 'AGENT_UNREACHABLE' });
  await t.rejects(verb('watch').run(sock), { code: 'AGENT_UNREACHABLE' });
  await t.rejects(verb('probe').run(['--ip', '10.8.64.2', ...sock]), { code: 'AGENT_UNREACHABLE' });
});
