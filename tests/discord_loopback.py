"""A Discord on loopback, for running the real bot through discord.py's own gateway and HTTP
code: an aiohttp server on 127.0.0.1 that speaks the part of Discord's API v10 the bot uses.

It owns one guild with one text channel the bot can post in, records every request (method,
path, JSON body; never the token), and checks what the bot sends against Discord's documented
limits (``tests/discord_limits.py``: command names and descriptions, option counts, message
and embed sizes), answering a
violation with Discord's own ``400 Invalid Form Body`` and noting it in ``problems``. The
gateway sends zlib-stream frames, as discord.py asks for, and can push interactions and
reactions to the bot. ``rate_limit`` answers chosen requests with Discord's 429; ``outage``,
``cut`` and ``slow`` make chosen requests meet a Discord that is down, that accepts a message
but loses the answer, or that is slow; ``refuse_resume`` and ``invalidate`` end sessions the
way Discord does (INVALID_SESSION). Test support only: nothing here ships.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import math
import re
import socket
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from aiohttp import WSMsgType, web

from tests.discord_limits import command_problems, message_problems

API = "/api/v10"
#: Discord's epoch-based ids are opaque to the bot; any increasing integers will do.
_sequence = itertools.count()
#: Discord's epoch (2015-01-01) in Unix milliseconds: a snowflake starts with the time since.
DISCORD_EPOCH = 1_420_070_400_000

#: How long the loopback remembers a message's nonce (Discord: "the past few minutes").
NONCE_MINUTES = 3

INVALID_FORM_BODY = 50035
EMPTY_MESSAGE = 50006
ALREADY_ACKNOWLEDGED = 40060
EPHEMERAL = 1 << 6
UNKNOWN_WEBHOOK = 10015

#: What Discord's edge adds to every answer, 429s included: discord.py takes a 429 without
#: it for a Cloudflare ban and raises ``HTTPException`` instead of waiting and retrying.
VIA = "1.1 google"


def snowflake() -> str:
    """An id as Discord makes them: milliseconds since its epoch, then a sequence number,
    so ids grow with time and a message's time can be read from its id."""
    now = int(time.time() * 1000) - DISCORD_EPOCH
    return str((now << 22) | (next(_sequence) & 0x3FFFFF))


def json_response(data: Any, status: int = 200) -> web.Response:
    """JSON the way Discord sends it: discord.py parses a body only when the content type is
    exactly ``application/json`` (aiohttp's helper adds a charset)."""
    return web.Response(
        body=json.dumps(data).encode(), status=status, headers={"Content-Type": "application/json"}
    )


@dataclass(frozen=True)
class Request:
    """One request the bot made. ``authorized`` says whether it carried the bot's token;
    ``at`` is when it arrived (``time.monotonic()``)."""

    method: str
    path: str
    query: dict[str, str]
    body: Any
    authorized: bool
    at: float = 0.0
    #: The wait a 429 answering it asked for.
    retry_after: float | None = None


@dataclass
class RateLimit:
    """The next ``times`` requests matching ``method`` and ``pattern`` (in full, after
    /api/v10) are answered 429, as Discord answers a route whose bucket ran out, or every
    route when ``is_global``."""

    method: str
    pattern: str
    times: int
    retry_after: float
    is_global: bool
    bucket: str

    def response(self) -> web.Response:
        body = {
            "message": "You are being rate limited.",
            "retry_after": self.retry_after,
            "global": self.is_global,
        }
        headers = {
            "Content-Type": "application/json",
            "Via": VIA,
            "Retry-After": str(math.ceil(self.retry_after)),  # whole seconds, rounded up
        }
        if self.is_global:  # Discord names no bucket for the global limit
            headers |= {"X-RateLimit-Global": "true", "X-RateLimit-Scope": "global"}
        else:
            headers |= {
                "X-RateLimit-Limit": "5",
                "X-RateLimit-Remaining": "0",
                "X-RateLimit-Reset": f"{time.time() + self.retry_after:.3f}",
                "X-RateLimit-Reset-After": f"{self.retry_after:.3f}",
                "X-RateLimit-Bucket": self.bucket,
                "X-RateLimit-Scope": "user",
            }
        return web.Response(body=json.dumps(body).encode(), status=429, headers=headers)


@dataclass
class Fault:
    """Requests matching ``method`` and ``pattern`` (in full, after /api/v10) meet a fault:
    ``outage`` answers ``status`` without doing anything, as Discord's edge does while the
    API behind it is down; ``cut`` does the request, then closes the connection before the
    answer leaves (Discord accepted the message, the bot never hears so); ``slow`` answers
    after ``seconds``. It applies to the next ``times`` such requests after the first
    ``skip``, or, with ``active``, for as long as ``active()`` says (a clock's outage)."""

    kind: str
    method: str
    pattern: str
    times: int | None = 1
    skip: int = 0
    status: int = 502
    seconds: float = 0.0
    active: Callable[[], bool] | None = None

    def applies(self, method: str, path: str) -> bool:
        if method != self.method or not re.fullmatch(self.pattern, path):
            return False
        if self.active is not None:
            return self.active()
        if self.skip:
            self.skip -= 1
            return False
        if not self.times:
            return False
        self.times -= 1
        return True

    def response(self) -> web.Response:
        """What Discord's edge (Cloudflare) answers while the API is down: an HTML page."""
        reason = {500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable"}
        text = (
            f"<html><body><h1>{self.status} {reason.get(self.status, 'Error')}</h1></body></html>"
        )
        return web.Response(
            text=text, status=self.status, content_type="text/html", headers={"Via": VIA}
        )


@dataclass
class Gateway:
    """One gateway connection: its socket and the zlib stream every payload goes through."""

    ws: web.WebSocketResponse
    query: dict[str, str]
    compressor: Any = field(default_factory=zlib.compressobj)
    sequence: int = 0
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    identified: bool = False
    received: list[dict[str, Any]] = field(default_factory=list)
    #: The sequence each heartbeat carried.
    heartbeats: list[int | None] = field(default_factory=list)
    #: A connection Discord has stopped answering: no ACK, no event (see ``silence``).
    silent: bool = False

    async def send(self, op: int, d: Any, t: str | None = None) -> None:
        if self.silent:
            return
        async with self.lock:  # one compression stream: frames must leave in order
            s = None
            if op == 0:
                self.sequence += 1
                s = self.sequence
            data = json.dumps({"op": op, "d": d, "s": s, "t": t}).encode()
            frame = self.compressor.compress(data) + self.compressor.flush(zlib.Z_SYNC_FLUSH)
            await self.ws.send_bytes(frame)


class DiscordLoopback:
    """The server. Create it, point discord.py at ``api_base`` and ``gateway_url`` (see
    ``tests/discord_scenario.py``), ``await start()``, and ``await close()`` after the bot.

    ``identify_token`` is what IDENTIFY must carry (defaults to ``token``): set it to something
    else to have REST accept the bot and the gateway refuse it with close code 4004.
    """

    def __init__(
        self, token: str, *, identify_token: str | None = None, heartbeat_interval: int = 41_250
    ):
        self.token = token
        #: Milliseconds between heartbeats, as HELLO tells the bot (Discord's is about 41 s).
        self.heartbeat_interval = heartbeat_interval
        self.identify_token = token if identify_token is None else identify_token
        self.application_id = snowflake()
        self.guild_id = snowflake()
        self.channel_id = snowflake()
        self.everyone_role = self.guild_id  # @everyone's id is the guild's
        self.bot_role = snowflake()
        self.owner = self._user(snowflake(), "owner", bot=False)
        self.bot_user = self._user(self.application_id, "tracker", bot=True)
        self.requests: list[Request] = []
        #: The requests answered 429 (they are in ``requests`` too).
        self.limited: list[Request] = []
        self._rate_limits: list[RateLimit] = []
        self._faults: list[Fault] = []
        #: The requests that met a fault, with its kind (they are in ``requests`` too).
        self.faulted: list[tuple[str, Request]] = []
        #: Answer every RESUME with INVALID_SESSION (d=false), as Discord does once a session
        #: has expired: the bot must IDENTIFY again.
        self.refuse_resume = False
        self.invalid_sessions: list[bool] = []  # the d of each INVALID_SESSION sent
        self._sessions = itertools.count(1)
        self.problems: list[str] = []
        self.commands: dict[str | None, list[dict[str, Any]]] = {}
        self.messages: dict[str, dict[str, Any]] = {}
        self.reactions: list[tuple[str, str, str]] = []  # (channel, message, emoji)
        #: Who shows each emoji on each message, oldest first: the bot's seeds and readers'.
        self.reactors: dict[tuple[str, str], list[str]] = {}  # (message, emoji) -> user ids
        self.session_id = ""  # a new one at every IDENTIFY, as Discord gives
        self.interactions: dict[str, dict[str, Any]] = {}  # token -> INTERACTION_CREATE data
        self.callbacks: list[tuple[str, dict[str, Any]]] = []  # (interaction token, body)
        self._followed_up: set[str] = set()  # interaction tokens with a follow-up already
        self._nonces: dict[tuple[str, str], tuple[str, float]] = {}  # -> (message, when)
        #: How long a nonce is remembered; 0 forgets at once, as Discord does after minutes.
        self.nonce_minutes: float = NONCE_MINUTES
        self.closed_with: list[int] = []
        self.gateways: list[Gateway] = []
        self._changed: asyncio.Condition | None = None  # made in start(): needs a loop
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.bind(("127.0.0.1", 0))
        self.port: int = self._socket.getsockname()[1]
        self._runner: web.AppRunner | None = None

    # --- addresses and lifecycle ----------------------------------------------------------

    @property
    def api_base(self) -> str:
        return f"http://127.0.0.1:{self.port}{API}"

    @property
    def gateway_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/gateway"

    async def start(self) -> None:
        self._changed = asyncio.Condition()
        app = web.Application()
        app.router.add_get("/gateway", self._gateway)
        app.router.add_route("*", API + "/{tail:.*}", self._rest)
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await self._runner.setup()
        await web.SockSite(self._runner, self._socket).start()

    async def close(self) -> None:
        for gateway in self.gateways:
            if not gateway.ws.closed:
                await gateway.ws.close()
        if self._runner is not None:
            await self._runner.cleanup()
        self._socket.close()

    async def wait_for(
        self, ready: Callable[[], Any], timeout: float = 10.0, what: str = "the bot"
    ) -> Any:
        """Wait until ``ready()`` is truthy, re-checking whenever the bot does something (a
        request, a gateway payload); ``timeout`` is only a guard against a hung test."""
        changed = self._changed
        assert changed is not None, "start() the loopback first"

        async def check() -> Any:
            async with changed:
                return await changed.wait_for(ready)

        try:
            return await asyncio.wait_for(check(), timeout)
        except TimeoutError:
            raise AssertionError(f"timed out waiting for {what}") from None

    async def _notify(self) -> None:
        if self._changed is not None:
            async with self._changed:
                self._changed.notify_all()

    def rate_limit(
        self,
        method: str,
        pattern: str,
        times: int = 1,
        *,
        retry_after: float = 0.05,
        is_global: bool = False,
    ) -> None:
        """Answer the next ``times`` requests whose method is ``method`` and whose path
        (after /api/v10) matches ``pattern`` in full with Discord's 429: the JSON body
        (``retry_after`` in seconds, ``global``) and the ``X-RateLimit-*`` headers. Only
        what was asked for is limited: nothing else the bot sends is slowed down."""
        assert times >= 1 and 0 < retry_after <= 1, "keep the tests fast"
        self._rate_limits.append(
            RateLimit(method, pattern, times, retry_after, is_global, f"loopback-{snowflake()}")
        )

    def _rate_limited(self, method: str, path: str) -> RateLimit | None:
        for limit in self._rate_limits:
            if limit.times and limit.method == method and re.fullmatch(limit.pattern, path):
                limit.times -= 1
                return limit
        return None

    def outage(
        self, method: str, pattern: str, active: Callable[[], bool], *, status: int = 502
    ) -> None:
        """Answer ``status`` to matching requests while ``active()``, doing nothing."""
        self._faults.append(Fault("outage", method, pattern, None, status=status, active=active))

    def cut(self, method: str, pattern: str, *, times: int = 1, skip: int = 0) -> None:
        """Do the next ``times`` matching requests (after ``skip``), then close the
        connection before answering: the bot cannot know that Discord accepted them."""
        self._faults.append(Fault("cut", method, pattern, times, skip))

    def slow(
        self, method: str, pattern: str, seconds: float, *, times: int = 1, skip: int = 0
    ) -> None:
        """Answer the next ``times`` matching requests (after ``skip``) after ``seconds``."""
        assert 0 < seconds <= 1, "keep the tests fast"
        self._faults.append(Fault("slow", method, pattern, times, skip, seconds=seconds))

    def _fault(self, method: str, path: str) -> Fault | None:
        return next((f for f in self._faults if f.applies(method, path)), None)

    def sent(self, method: str, pattern: str) -> list[Request]:
        """The requests whose method is ``method`` and whose path (after /api/v10) matches
        ``pattern`` in full."""
        return [r for r in self.requests if r.method == method and re.fullmatch(pattern, r.path)]

    # --- gateway ----------------------------------------------------------------------------

    async def _gateway(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        gateway = Gateway(ws, dict(request.query))
        earlier = self.gateways[-1] if self.gateways else None
        self.gateways.append(gateway)
        if gateway.query.get("compress") != "zlib-stream":
            self.problems.append(f"gateway asked for compress={gateway.query.get('compress')}")
        await gateway.send(10, {"heartbeat_interval": self.heartbeat_interval})
        async for message in ws:
            if message.type is not WSMsgType.TEXT:
                continue
            payload = json.loads(message.data)
            gateway.received.append(payload)
            op = payload.get("op")
            if op == 1:
                gateway.heartbeats.append(payload["d"])
                await gateway.send(11, None)
            elif op == 2:
                if payload["d"].get("token") != self.identify_token:
                    self.closed_with.append(4004)
                    await ws.close(code=4004, message=b"Authentication failed.")
                    break
                await self._identified(gateway, payload["d"])
            elif op == 6:
                if self.refuse_resume:
                    await self._invalid_session(gateway, resumable=False)
                else:
                    await self._resumed(gateway, payload["d"], earlier)
            else:
                self.problems.append(f"gateway op {op} is not supported by the loopback")
            await self._notify()
        await self._notify()
        return ws

    async def _identified(self, gateway: Gateway, identify: dict[str, Any]) -> None:
        gateway.identified = True
        self.session_id = f"loopback-session-{next(self._sessions)}"
        await gateway.send(
            0,
            {
                "v": 10,
                "user": self.bot_user,
                "guilds": [{"id": self.guild_id, "unavailable": True}],
                "session_id": self.session_id,
                "resume_gateway_url": self.gateway_url,
                "shard": [0, 1],
                "application": {"id": self.application_id, "flags": 0},
            },
            "READY",
        )
        await gateway.send(0, self._guild(), "GUILD_CREATE")

    async def _resumed(
        self, gateway: Gateway, resume: dict[str, Any], earlier: Gateway | None
    ) -> None:
        """RESUME of the last session at the sequence it reached: RESUMED, and the sequence
        goes on from there. Anything else is an invalid session that cannot be resumed."""
        if (
            earlier is None
            or resume.get("token") != self.identify_token
            or resume.get("session_id") != self.session_id
            or resume.get("seq") != earlier.sequence
        ):
            self.problems.append(f"a RESUME the loopback cannot honour: seq {resume.get('seq')}")
            await self._invalid_session(gateway, resumable=False)
            return
        gateway.sequence = earlier.sequence
        gateway.identified = True
        await gateway.send(0, {}, "RESUMED")

    async def _invalid_session(self, gateway: Gateway, *, resumable: bool) -> None:
        self.invalid_sessions.append(resumable)
        await gateway.send(9, resumable)

    async def invalidate(self, *, resumable: bool) -> None:
        """INVALID_SESSION on the live connection: with ``resumable`` the bot should
        connect again and RESUME; without, IDENTIFY as a new session."""
        await self._invalid_session(self._live(), resumable=resumable)

    def _live(self) -> Gateway:
        live = [g for g in self.gateways if g.identified and not g.ws.closed]
        assert live, "the bot is not connected"
        return live[-1]

    def silence(self) -> None:
        """The live connection goes quiet (no heartbeat ACK, no event) while staying open,
        as a half-dead connection does: the bot should give it up and RESUME elsewhere."""
        self._live().silent = True

    async def reconnect(self) -> None:
        """RECONNECT (op 7) on the live connection: the bot should connect again and RESUME."""
        await self._live().send(7, None)

    async def ask_heartbeat(self) -> None:
        """HEARTBEAT (op 1) sent to the bot: it should answer with one at once."""
        await self._live().send(1, None)

    async def drop(self, code: int = 4000) -> None:
        """Close the bot's live gateway connection the way Discord does when it restarts a
        node: the bot should connect again and RESUME."""
        live = self._live()
        self.closed_with.append(code)
        await live.ws.close(code=code, message=b"Unknown error.")

    async def dispatch(self, event: str, data: dict[str, Any]) -> None:
        """Send a DISPATCH to the bot on its identified connection."""
        await self._live().send(0, data, event)

    async def interaction(
        self,
        name: str,
        options: dict[str, str | int | bool] | None = None,
        *,
        user_id: str | None = None,
        permissions: int = 0,
        subcommand: str | None = None,
        focused: str | None = None,
        target: str | None = None,
    ) -> dict[str, Any]:
        """An application command used in the channel (``subcommand`` of a group, when
        given); returns the interaction sent. With ``focused``, the member is still typing
        that option: an APPLICATION_COMMAND_AUTOCOMPLETE (type 4), answered with choices.
        With ``target``, a message command (an app's entry in a message's menu) used on
        that message of the channel, which Discord sends resolved in the interaction."""
        user = self._user(user_id or snowflake(), "reader", bot=False)
        types = {str: 3, int: 4, bool: 5}
        registered = {c["name"]: c["id"] for cs in self.commands.values() for c in cs}
        given: list[dict[str, Any]] = [
            {
                "name": k,
                "type": types[type(v)],
                "value": v,
                **({"focused": True} if k == focused else {}),
            }
            for k, v in (options or {}).items()
        ]
        if subcommand is not None:
            given = [{"name": subcommand, "type": 1, "options": given}]
        used: dict[str, Any] = {"type": 1, "options": given}  # a slash command
        if target is not None:  # a message command, with the message resolved
            shown = {**self.messages[target], "reactions": self._shown(target)}
            used = {"type": 3, "target_id": target, "resolved": {"messages": {target: shown}}}
        data: dict[str, Any] = {
            "id": snowflake(),
            "application_id": self.application_id,
            "type": 2 if focused is None else 4,
            "token": f"interaction-token-{snowflake()}",
            "version": 1,
            "guild_id": self.guild_id,
            "channel_id": self.channel_id,
            "channel": self._channel(),
            "member": self._member(user, roles=[], permissions=permissions),
            "app_permissions": str(self._bot_permissions()),
            "locale": "en-US",
            "guild_locale": "en-US",
            "attachment_size_limit": 10 * 1024 * 1024,
            "authorizing_integration_owners": {"0": self.guild_id},
            "context": 0,
            "entitlements": [],
            "data": {
                "id": registered.get(name, snowflake()),
                "name": name,
                "guild_id": self.guild_id,
                **used,
            },
        }
        self.interactions[data["token"]] = data
        await self.dispatch("INTERACTION_CREATE", data)
        return data

    async def reaction_add(self, message_id: str, emoji: str, user_id: str) -> None:
        """``user_id`` reacts with ``emoji``: it shows on the message, and the bot hears it."""
        users = self.reactors.setdefault((message_id, emoji), [])
        if user_id not in users:
            users.append(user_id)
        user = self._user(user_id, "reader", bot=False)
        await self.dispatch(
            "MESSAGE_REACTION_ADD",
            {
                "user_id": user_id,
                "channel_id": self.channel_id,
                "message_id": message_id,
                "guild_id": self.guild_id,
                "member": self._member(user, roles=[]),
                "emoji": {"id": None, "name": emoji},
                "burst": False,
                "type": 0,
                "message_author_id": self.application_id,
            },
        )

    async def reaction_remove(self, message_id: str, emoji: str, user_id: str) -> None:
        """``user_id`` takes ``emoji`` away: Discord's event carries no member."""
        users = self.reactors.get((message_id, emoji), [])
        if user_id in users:
            users.remove(user_id)
        await self.dispatch(
            "MESSAGE_REACTION_REMOVE",
            {
                "user_id": user_id,
                "channel_id": self.channel_id,
                "message_id": message_id,
                "guild_id": self.guild_id,
                "emoji": {"id": None, "name": emoji},
                "burst": False,
                "type": 0,
            },
        )

    # --- REST -------------------------------------------------------------------------------

    async def _rest(self, request: web.Request) -> web.StreamResponse:
        path = request.path[len(API) :]
        body: Any = None
        if request.can_read_body:
            if request.content_type == "application/json":
                body = await request.json()
            else:
                body = {"unsupported": request.content_type}
                self.problems.append(f"{request.method} {path}: {request.content_type} body")
        authorized = request.headers.get("Authorization") == f"Bot {self.token}"
        recorded = Request(
            request.method, path, dict(request.query), body, authorized, time.monotonic()
        )
        self.requests.append(recorded)
        try:
            limit = self._rate_limited(request.method, path)
            if limit is not None:
                recorded = replace(recorded, retry_after=limit.retry_after)
                self.requests[-1] = recorded
                self.limited.append(recorded)
                return limit.response()
            fault = self._fault(request.method, path)
            if fault is not None:
                self.faulted.append((fault.kind, recorded))
                if fault.kind == "outage":
                    return fault.response()
                if fault.kind == "slow":
                    await asyncio.sleep(fault.seconds)
            answer = await self._route(request.method, path, body, authorized, dict(request.query))
            if fault is not None and fault.kind == "cut":
                assert request.transport is not None
                request.transport.close()  # done, but the answer never leaves
            return answer
        finally:
            await self._notify()

    async def _route(
        self, method: str, path: str, body: Any, authorized: bool, query: dict[str, str]
    ) -> web.StreamResponse:
        webhook = re.fullmatch(r"/(interactions|webhooks)/(\d+)/([^/]+)(/.*)?", path)
        if webhook is None and not authorized:
            return json_response({"message": "401: Unauthorized", "code": 0}, status=401)
        app = re.escape(self.application_id)
        channel = re.escape(self.channel_id)
        if method == "GET" and path == "/users/@me":
            return json_response(self.bot_user)
        if method == "GET" and path == "/oauth2/applications/@me":
            return json_response(self._application())
        if method == "GET" and path == "/gateway/bot":
            return json_response(
                {
                    "url": self.gateway_url,
                    "shards": 1,
                    "session_start_limit": {
                        "total": 1000,
                        "remaining": 999,
                        "reset_after": 14_400_000,
                        "max_concurrency": 1,
                    },
                }
            )
        scope = re.fullmatch(rf"/applications/{app}(?:/guilds/(\d+))?/commands", path)
        if method == "PUT" and scope:
            return self._sync(scope.group(1), body)
        if method == "GET" and path == f"/channels/{self.channel_id}":
            return json_response(self._channel())
        if method == "POST" and path == f"/channels/{self.channel_id}/messages":
            return self._post_message(path, body, author=self.bot_user)
        if method == "GET" and path == f"/channels/{self.channel_id}/messages":
            # The channel's messages (ephemeral replies are nobody's): after an id, oldest
            # first; else the latest, newest first.
            shown = [
                {**m, "reactions": self._shown(m["id"])}
                for m in self.messages.values()
                if m["channel_id"] == self.channel_id and not m["flags"] & EPHEMERAL
            ]
            limit = min(int(query.get("limit", 50)), 100)
            if "after" in query:
                return json_response(
                    [m for m in shown if int(m["id"]) > int(query["after"])][:limit]
                )
            return json_response(shown[::-1][:limit])
        found = re.fullmatch(rf"/channels/{channel}/messages/(\d+)", path)
        if method == "GET" and found and found.group(1) in self.messages:
            message_id = found.group(1)
            return json_response(
                {**self.messages[message_id], "reactions": self._shown(message_id)}
            )
        found = re.fullmatch(rf"/channels/{channel}/messages/(\d+)/reactions/([^/]+)/@me", path)
        if method == "PUT" and found and found.group(1) in self.messages:
            message_id, emoji = found.groups()
            self.reactions.append((self.channel_id, message_id, emoji))
            users = self.reactors.setdefault((message_id, emoji), [])
            if self.application_id not in users:
                users.append(self.application_id)
            return web.Response(status=204)
        found = re.fullmatch(rf"/channels/{channel}/messages/(\d+)/reactions/([^/]+)", path)
        if method == "GET" and found and found.group(1) in self.messages:
            users = sorted(self.reactors.get((found.group(1), found.group(2)), []), key=int)
            after = int(query.get("after", 0))
            limit = int(query.get("limit", 25))
            shown = [u for u in users if int(u) > after][:limit]
            return json_response(
                [self.bot_user if u == self.application_id else self._reader(u) for u in shown]
            )
        if webhook is not None:
            kind, id_, token, rest = webhook.groups()
            return self._webhook(method, kind, id_, token, rest, body)
        self.problems.append(f"{method} {path}: no such route in the loopback")
        return json_response({"message": "404: Not Found", "code": 0}, status=404)

    def _sync(self, guild: str | None, body: Any) -> web.Response:
        errors = command_problems(body)
        if errors:
            return self._invalid(f"PUT commands (guild {guild})", errors)
        given = []
        for command in body:
            given.append(
                {
                    "id": snowflake(),
                    "application_id": self.application_id,
                    "version": snowflake(),
                    "default_member_permissions": None,
                    "type": 1,
                    "nsfw": False,
                    "description": "",  # context menus have none, and Discord answers ""
                    **command,
                    **({"guild_id": guild} if guild else {}),
                }
            )
        self.commands[guild] = given
        return json_response(given)

    def _post_message(
        self, where: str, body: Any, author: dict[str, Any], **extra: Any
    ) -> web.Response:
        errors = message_problems(body)
        if errors:
            return self._invalid(f"POST {where}", errors)
        nonce = body.get("nonce")
        remembered = (author["id"], str(nonce))
        if nonce is not None and body.get("enforce_nonce"):
            # "If another message was created by the same author with the same nonce, that
            # message will be returned and no new message will be created." Discord checks
            # "in the past few minutes": the loopback remembers NONCE_MINUTES.
            earlier = self._nonces.get(remembered)
            if earlier is not None and time.monotonic() - earlier[1] < self.nonce_minutes * 60:
                return json_response(self.messages[earlier[0]])
        message = self._message(body, author, **extra)
        self.messages[message["id"]] = message
        if nonce is not None:
            self._nonces[remembered] = (message["id"], time.monotonic())
        return json_response(message)

    def _webhook(
        self, method: str, kind: str, id_: str, token: str, rest: str | None, body: Any
    ) -> web.Response:
        interaction = self.interactions.get(token)
        unknown = json_response({"message": "Unknown Webhook", "code": UNKNOWN_WEBHOOK}, 404)
        if interaction is None:
            self.problems.append(f"{method} {kind}: unknown interaction token")
            return unknown
        if kind == "interactions" and method == "POST" and rest == "/callback":
            if id_ != interaction["id"]:
                return unknown
            if any(t == token for t, _ in self.callbacks):
                self.problems.append(f"a second initial response to interaction {id_}")
                return json_response(
                    {
                        "message": "Interaction has already been acknowledged.",
                        "code": ALREADY_ACKNOWLEDGED,
                    },
                    status=400,
                )
            self.callbacks.append((token, body))
            return self._callback(interaction, body)
        if kind != "webhooks" or id_ != self.application_id:
            return unknown
        if not any(t == token for t, _ in self.callbacks):
            self.problems.append("a follow-up before the initial response")
            return unknown
        webhook_extra = {"webhook_id": self.application_id, "application_id": self.application_id}
        if method == "POST" and rest is None:
            shown = self._follow_up_flags(token, body)
            return self._post_message(
                "webhook follow-up", body, self.bot_user, **webhook_extra, flags=shown
            )
        if method == "PATCH" and rest == "/messages/@original":
            self._followed_up.add(token)  # the deferral answered: no follow-up takes its place
            return self._post_message("edit @original", body, self.bot_user, **webhook_extra)
        self.problems.append(f"{method} webhooks/.../{rest}: not supported by the loopback")
        return unknown

    def _follow_up_flags(self, token: str, body: Any) -> int:
        """The flags a follow-up is shown with. Discord: the first follow-up after a
        deferral takes the place of its "thinking..." message and is exactly as visible as
        the deferral, whatever flags it asks for; later follow-ups are as they ask."""
        asked = int((body or {}).get("flags") or 0)
        first = token not in self._followed_up
        self._followed_up.add(token)
        deferral = next((b for t, b in self.callbacks if t == token), {})
        if first and deferral.get("type") == 5:
            ephemeral = int((deferral.get("data") or {}).get("flags") or 0) & EPHEMERAL
            return (asked & ~EPHEMERAL) | ephemeral
        return asked

    def _callback(self, interaction: dict[str, Any], body: Any) -> web.Response:
        kind = body.get("type") if isinstance(body, dict) else None
        data = (body or {}).get("data") or {}
        resource: dict[str, Any] = {"type": kind}
        if kind == 4:
            errors = message_problems(data)
            if errors:
                return self._invalid("interaction callback", errors)
            message = self._message(data, self.bot_user, interaction_id=interaction["id"])
            self.messages[message["id"]] = message
            resource["message"] = message
        elif kind not in (5, 8):  # a deferral, or autocomplete choices
            self.problems.append(f"interaction callback type {kind} not supported by the loopback")
        return json_response(
            {
                "interaction": {
                    "id": interaction["id"],
                    "type": interaction["type"],
                    "response_message_id": resource.get("message", {}).get("id"),
                    "response_message_loading": kind == 5,
                    "response_message_ephemeral": bool(data.get("flags", 0) & 64),
                },
                "resource": resource,
            }
        )

    def _invalid(self, what: str, errors: list[str]) -> web.Response:
        self.problems.extend(f"{what}: {e}" for e in errors)
        return json_response(
            {"message": "Invalid Form Body", "code": INVALID_FORM_BODY, "errors": errors},
            status=400,
        )

    def _shown(self, message_id: str) -> list[dict[str, Any]]:
        """A message's ``reactions`` field: one entry per emoji someone still shows."""
        shown = []
        for (message, emoji), users in self.reactors.items():
            if message == message_id and users:
                shown.append(
                    {
                        "emoji": {"id": None, "name": emoji},
                        "count": len(users),
                        "count_details": {"burst": 0, "normal": len(users)},
                        "me": self.application_id in users,
                        "me_burst": False,
                        "burst_colors": [],
                    }
                )
        return shown

    # --- objects ----------------------------------------------------------------------------

    @staticmethod
    def _user(id_: str, name: str, *, bot: bool) -> dict[str, Any]:
        return {
            "id": id_,
            "username": name,
            "discriminator": "0",
            "global_name": None,
            "avatar": None,
            "bot": bot,
            "public_flags": 0,
            "flags": 0,
        }

    def _reader(self, id_: str) -> dict[str, Any]:
        return self._user(id_, "reader", bot=False)

    def _application(self) -> dict[str, Any]:
        return {
            "id": self.application_id,
            "name": "tracker",
            "description": "",
            "icon": None,
            "bot_public": False,
            "bot_require_code_grant": False,
            "owner": self.owner,
            "verify_key": "0" * 64,
            "flags": 0,
            "bot": self.bot_user,
        }

    def _bot_permissions(self) -> int:
        # view channel, send messages, embed links, add reactions, read message history
        return (1 << 10) | (1 << 11) | (1 << 14) | (1 << 6) | (1 << 16)

    def _member(
        self, user: dict[str, Any], roles: list[str], permissions: int | None = None
    ) -> dict[str, Any]:
        member = {
            "user": user,
            "roles": roles,
            "nick": None,
            "avatar": None,
            "joined_at": "2026-01-01T00:00:00+00:00",
            "deaf": False,
            "mute": False,
            "flags": 0,
            "pending": False,
        }
        if permissions is not None:
            member["permissions"] = str(permissions)
        return member

    def _channel(self) -> dict[str, Any]:
        return {
            "id": self.channel_id,
            "type": 0,
            "guild_id": self.guild_id,
            "name": "digest",
            "position": 0,
            "permission_overwrites": [],
            "nsfw": False,
            "topic": None,
            "last_message_id": None,
            "rate_limit_per_user": 0,
            "parent_id": None,
        }

    def _role(self, id_: str, name: str, permissions: int, position: int) -> dict[str, Any]:
        return {
            "id": id_,
            "name": name,
            "color": 0,
            "colors": {"primary_color": 0, "secondary_color": None, "tertiary_color": None},
            "hoist": False,
            "icon": None,
            "unicode_emoji": None,
            "position": position,
            "permissions": str(permissions),
            "managed": id_ != self.everyone_role,
            "mentionable": False,
            "flags": 0,
        }

    def _guild(self) -> dict[str, Any]:
        return {
            "id": self.guild_id,
            "name": "Loopback",
            "icon": None,
            "splash": None,
            "discovery_splash": None,
            "owner_id": self.owner["id"],
            "afk_channel_id": None,
            "afk_timeout": 300,
            "verification_level": 0,
            "default_message_notifications": 1,
            "explicit_content_filter": 0,
            "roles": [
                self._role(self.everyone_role, "@everyone", 0, 0),
                self._role(self.bot_role, "tracker", self._bot_permissions(), 1),
            ],
            "emojis": [],
            "stickers": [],
            "features": [],
            "mfa_level": 0,
            "application_id": None,
            "system_channel_id": None,
            "system_channel_flags": 0,
            "rules_channel_id": None,
            "vanity_url_code": None,
            "description": None,
            "banner": None,
            "premium_tier": 0,
            "preferred_locale": "en-US",
            "public_updates_channel_id": None,
            "nsfw_level": 0,
            "premium_progress_bar_enabled": False,
            "joined_at": "2026-01-01T00:00:00+00:00",
            "large": False,
            "unavailable": False,
            "member_count": 2,
            "voice_states": [],
            "members": [self._member(self.bot_user, roles=[self.bot_role])],
            "channels": [self._channel()],
            "threads": [],
            "presences": [],
            "stage_instances": [],
            "guild_scheduled_events": [],
            "soundboard_sounds": [],
        }

    def _message(self, body: dict[str, Any], author: dict[str, Any], **extra: Any) -> dict:
        return {
            "id": snowflake(),
            "channel_id": self.channel_id,
            "guild_id": self.guild_id,
            "author": author,
            "content": body.get("content") or "",
            "timestamp": "2026-11-24T09:00:00+00:00",
            "edited_timestamp": None,
            "tts": False,
            "mention_everyone": False,
            "mentions": [],
            "mention_roles": [],
            "attachments": [],
            "embeds": body.get("embeds") or [],
            "reactions": [],
            "pinned": False,
            "type": 0,
            "flags": body.get("flags", 0) or 0,
            "components": [],
            **({"nonce": body["nonce"]} if body.get("nonce") is not None else {}),
            **extra,
        }
