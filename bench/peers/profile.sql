-- DuckDB peer of `sleuth profile PRINCIPAL` (bench/run.py --peer "profile NAME=bench/peers/profile.sql").
-- {events}: the case's events Parquet glob; {arg}: the principal, an ARN or an IAM user/role name.
-- Scope: the last 24 h of the data (up to the whole second after its last event); baseline: the 45 days
-- before. The panels sleuth computes from the events alone; see bench/README.md for what it adds.
SET TimeZone = 'UTC';

-- sleuth's failed(): an errorCode, or a console sign-in whose response says Failure.
CREATE MACRO failed(error_code, action, response) AS
    error_code IS NOT NULL
    OR coalesce(action = 'ConsoleLogin' AND regexp_matches(response, '"ConsoleLogin"\s*:\s*"Failure"'), false);
-- sleuth's normalized_ip(): IPv4 without leading zeros, IPv6 lowercased, host names (ec2.amazonaws.com) null.
CREATE MACRO norm_ip(s) AS CASE
    WHEN regexp_full_match(trim(s), '\d{1,3}(\.\d{1,3}){3}') THEN regexp_replace(trim(s), '(^|\.)0+(\d)', '\1\2', 'g')
    WHEN regexp_full_match(trim(s), '[0-9A-Fa-f:.]+') AND contains(s, ':') THEN lower(trim(s)) END;
-- sleuth's api_name(): service:Action with the short service name.
CREATE MACRO api(service, action) AS
    coalesce(regexp_replace(service, '\.amazonaws\.com$', '') || ':' || action, action);

CREATE TEMP TABLE win AS
SELECT date_trunc('second', max(time)) + INTERVAL 1 SECOND AS scope_end,
       date_trunc('second', max(time)) + INTERVAL 1 SECOND - INTERVAL 24 HOUR AS scope_start,
       date_trunc('second', max(time)) + INTERVAL 1 SECOND - INTERVAL 24 HOUR - INTERVAL 45 DAY AS baseline_start
FROM read_parquet({events});

-- Every event of the principal (the exact ARN, or an ARN ending in /NAME), read once.
CREATE TEMP TABLE mine AS
SELECT time, account, api(service, action) AS api, failed(error_code, action, response) AS failed,
       norm_ip(src_ip) AS ip, user_agent, principal, session, access_key
FROM read_parquet({events})
WHERE principal = {arg} OR ends_with(principal, '/' || {arg});

-- Those in the baseline + scope window, flagged by window.
CREATE TEMP TABLE act AS
SELECT m.*, time >= scope_start AS in_scope
FROM mine m, win WHERE time >= baseline_start AND time < scope_end;

-- Details: the entity over all the data; the keys and sessions it used in the window.
SELECT principal, count(*) AS events, count(*) FILTER (failed) AS failures, min(time) AS first_seen,
       max(time) AS last_seen, mode(account) AS account
FROM mine GROUP BY principal;
SELECT list(DISTINCT access_key ORDER BY access_key) FILTER (access_key IS NOT NULL) AS access_keys,
       list(DISTINCT session ORDER BY session) FILTER (session IS NOT NULL) AS sessions FROM act;

-- Volume: successes and failures per hour of the scope (every hour, empty ones too), with the baseline's
-- mean per hour (over the baseline after the principal's first activity).
WITH grid AS (
    SELECT unnest(range(date_trunc('hour', scope_start), scope_end, INTERVAL 1 HOUR)) AS bucket FROM win),
counted AS (
    SELECT date_trunc('hour', time) AS bucket, count(*) FILTER (NOT failed) AS success,
           count(*) FILTER (failed) AS failure
    FROM act WHERE in_scope GROUP BY ALL),
baseline AS (
    SELECT count(*) FILTER (NOT in_scope)
           / greatest(epoch(scope_start - greatest(baseline_start, (SELECT min(time) FROM mine))) / 3600, 1)
           AS mean
    FROM act, win GROUP BY scope_start, baseline_start)
SELECT bucket, coalesce(success, 0) AS success, coalesce(failure, 0) AS failure, round(mean, 2) AS baseline
FROM grid LEFT JOIN counted USING (bucket), baseline ORDER BY bucket;

-- API calls in the scope: successes, failures, first and last seen.
SELECT api, count(*) FILTER (NOT failed) AS success, count(*) FILTER (failed) AS failure, count(*) AS calls,
       min(time) AS first_seen, max(time) AS last_seen
FROM act WHERE in_scope GROUP BY api ORDER BY calls DESC, api;

-- Addresses and user agents in the scope.
SELECT ip, count(*) AS calls, count(*) FILTER (failed) AS failure, min(time) AS first_seen, max(time) AS last_seen
FROM act WHERE in_scope AND ip IS NOT NULL GROUP BY ip ORDER BY calls DESC, ip;
SELECT user_agent, count(*) AS calls, count(*) FILTER (failed) AS failure, min(time) AS first_seen,
       max(time) AS last_seen
FROM act WHERE in_scope AND user_agent IS NOT NULL GROUP BY user_agent ORDER BY calls DESC, user_agent;

-- Newly observed: values the principal used in the scope and never in its baseline (an anti-join), each
-- flagged new_for_account when no caller of its account used it in the baseline either.
-- (The account's distinct raw values first: normalizing them is then cheap, as sleuth does.)
CREATE TEMP VIEW account_baseline AS
SELECT src_ip, user_agent, service, action FROM read_parquet({events}), win
WHERE time >= baseline_start AND time < scope_start AND account = (SELECT mode(account) FROM mine);
CREATE TEMP TABLE known_agents AS SELECT DISTINCT user_agent FROM account_baseline WHERE user_agent IS NOT NULL;
CREATE TEMP TABLE known_apis AS SELECT DISTINCT api(service, action) AS api FROM
    (SELECT DISTINCT service, action FROM account_baseline);
CREATE TEMP TABLE known_ips AS SELECT DISTINCT norm_ip(src_ip) AS ip FROM
    (SELECT DISTINCT src_ip FROM account_baseline) WHERE norm_ip(src_ip) IS NOT NULL;

SELECT user_agent AS value, min(time) AS first_seen, count(*) AS count,
       user_agent NOT IN (SELECT user_agent FROM known_agents) AS new_for_account
FROM act WHERE in_scope AND user_agent IS NOT NULL
  AND user_agent NOT IN (SELECT user_agent FROM act WHERE NOT in_scope AND user_agent IS NOT NULL)
GROUP BY user_agent ORDER BY first_seen, value;
SELECT api AS value, min(time) AS first_seen, count(*) AS count,
       api NOT IN (SELECT api FROM known_apis) AS new_for_account
FROM act WHERE in_scope AND api NOT IN (SELECT api FROM act WHERE NOT in_scope)
GROUP BY api ORDER BY first_seen, value;
SELECT ip AS value, min(time) AS first_seen, count(*) AS count,
       ip NOT IN (SELECT ip FROM known_ips) AS new_for_account
FROM act WHERE in_scope AND ip IS NOT NULL AND ip NOT IN (SELECT ip FROM act WHERE NOT in_scope AND ip IS NOT NULL)
GROUP BY ip ORDER BY first_seen, value;

-- Volume-spike candidates: scope and baseline counts per API and the expected scope count at the baseline
-- rate (sleuth then keeps those with a small Poisson tail; that test is not done here), all calls and failed.
WITH hours AS (
    SELECT epoch(scope_start - greatest(baseline_start, (SELECT min(time) FROM mine))) / 3600 AS baseline_hours
    FROM win)
SELECT api, failed_only, scope_count, baseline_count, baseline_count / baseline_hours * 24 AS expected
FROM (SELECT api, false AS failed_only, count(*) FILTER (in_scope) AS scope_count,
             count(*) FILTER (NOT in_scope) AS baseline_count FROM act GROUP BY api
      UNION ALL
      SELECT api, true, count(*) FILTER (in_scope), count(*) FILTER (NOT in_scope) FROM act WHERE failed GROUP BY api),
     hours
WHERE baseline_count > 0 AND baseline_hours >= 24
ORDER BY scope_count / expected DESC;
