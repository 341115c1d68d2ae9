"""Column layouts of the flow formats: names, label columns, identifiers, Flow field mapping."""

from __future__ import annotations

from dataclasses import dataclass, field

NSL_KDD_COLUMNS: tuple[str, ...] = (
    "duration", "protocol_type", "service", "flag", "src_bytes", "dst_bytes", "land", "wrong_fragment",
    "urgent", "hot", "num_failed_logins", "logged_in", "num_compromised", "root_shell", "su_attempted",
    "num_root", "num_file_creations", "num_shells", "num_access_files", "num_outbound_cmds",
    "is_host_login", "is_guest_login", "count", "srv_count", "serror_rate", "srv_serror_rate",
    "rerror_rate", "srv_rerror_rate", "same_srv_rate", "diff_srv_rate", "srv_diff_host_rate",
    "dst_host_count", "dst_host_srv_count", "dst_host_same_srv_rate", "dst_host_diff_srv_rate",
    "dst_host_same_src_port_rate", "dst_host_srv_diff_host_rate", "dst_host_serror_rate",
    "dst_host_srv_serror_rate", "dst_host_rerror_rate", "dst_host_srv_rerror_rate", "label", "difficulty",
)  # fmt: skip

# UNSW-NB15 training/testing-set partitions, in file order.
UNSW_NB15_COLUMNS: tuple[str, ...] = (
    "id", "dur", "proto", "service", "state", "spkts", "dpkts", "sbytes", "dbytes", "rate", "sttl", "dttl",
    "sload", "dload", "sloss", "dloss", "sinpkt", "dinpkt", "sjit", "djit", "swin", "stcpb", "dtcpb", "dwin",
    "tcprtt", "synack", "ackdat", "smean", "dmean", "trans_depth", "response_body_len", "ct_srv_src",
    "ct_state_ttl", "ct_dst_ltm", "ct_src_dport_ltm", "ct_dst_sport_ltm", "ct_dst_src_ltm", "is_ftp_login",
    "ct_ftp_cmd", "ct_flw_http_mthd", "ct_src_ltm", "ct_srv_dst", "is_sm_ips_ports", "attack_cat", "label",
)  # fmt: skip

# NSL-KDD attack name -> category (the standard mapping, as in the data set's SOURCE.md).
NSL_KDD_CATEGORIES: dict[str, str] = {
    **dict.fromkeys(
        ("back", "land", "neptune", "pod", "smurf", "teardrop", "apache2", "udpstorm", "processtable",
         "worm", "mailbomb"), "dos"),
    **dict.fromkeys(("satan", "ipsweep", "nmap", "portsweep", "mscan", "saint"), "probe"),
    **dict.fromkeys(
        ("guess_passwd", "ftp_write", "imap", "phf", "multihop", "warezmaster", "warezclient", "spy",
         "xlock", "xsnoop", "snmpguess", "snmpgetattack", "httptunnel", "sendmail", "named"), "r2l"),
    **dict.fromkeys(
        ("buffer_overflow", "loadmodule", "rootkit", "perl", "sqlattack", "xterm", "ps"), "u2r"),
}  # fmt: skip

ZEEK_CONN_FIELDS: tuple[str, ...] = (
    "ts", "uid", "id.orig_h", "id.orig_p", "id.resp_h", "id.resp_p", "proto", "service", "duration",
    "orig_bytes", "resp_bytes", "conn_state", "local_orig", "local_resp", "missed_bytes", "history",
    "orig_pkts", "orig_ip_bytes", "resp_pkts", "resp_ip_bytes", "tunnel_parents",
)  # fmt: skip

BENIGN_NAMES = frozenset({"normal", "benign", "0", "0.0", "false", "background", "legitimate", "-"})

FORMATS = ("nsl-kdd", "unsw-nb15", "cicflowmeter", "zeek", "csv", "pcap")


@dataclass(frozen=True)
class Layout:
    """How one format maps to features, labels and the typed Flow fields."""

    name: str
    required: tuple[str, ...] = ()
    label: str | None = None  # category label column
    binary_label: str | None = None  # 0/1 column, if the format has one apart from the category
    drop: tuple[str, ...] = ()  # never features: row ids, difficulty scores, free text
    meta: dict[str, str] = field(default_factory=dict)  # Flow field -> column
    categorical: tuple[str, ...] = ()


NSL_KDD = Layout(
    name="nsl-kdd",
    required=NSL_KDD_COLUMNS[:41],
    label="label",
    drop=("difficulty",),
    meta={"protocol": "protocol_type", "application": "service", "duration": "duration",
          "bytes_out": "src_bytes", "bytes_in": "dst_bytes"},
    categorical=("protocol_type", "service", "flag"),
)  # fmt: skip

UNSW_NB15 = Layout(
    name="unsw-nb15",
    required=("dur", "proto", "service", "state", "spkts", "dpkts", "sbytes", "dbytes"),
    label="attack_cat",
    binary_label="label",
    drop=("id", "srcip", "dstip", "sport", "stime", "ltime"),
    meta={"protocol": "proto", "application": "service", "duration": "dur", "bytes_out": "sbytes",
          "bytes_in": "dbytes", "packets_out": "spkts", "packets_in": "dpkts", "src_ip": "srcip",
          "dst_ip": "dstip", "src_port": "sport", "dst_port": "dsport"},
    categorical=("proto", "service", "state"),
)  # fmt: skip

# CICFlowMeter headers vary between releases ("Dst Port" / "Destination Port", leading spaces); the
# reader normalises names to lower-case snake case before matching these.
CICFLOWMETER = Layout(
    name="cicflowmeter",
    required=("flow_duration",),
    label="label",
    drop=("flow_id", "src_ip", "source_ip", "dst_ip", "destination_ip", "src_port", "source_port",
          "timestamp", "simillarhttp"),
    meta={"src_ip": "src_ip|source_ip", "dst_ip": "dst_ip|destination_ip",
          "src_port": "src_port|source_port", "dst_port": "dst_port|destination_port",
          "protocol": "protocol", "duration": "flow_duration",
          "packets_out": "tot_fwd_pkts|total_fwd_packets|total_fwd_packet",
          "packets_in": "tot_bwd_pkts|total_backward_packets|total_bwd_packets",
          "bytes_out": "totlen_fwd_pkts|total_length_of_fwd_packets|total_length_of_fwd_packet",
          "bytes_in": "totlen_bwd_pkts|total_length_of_bwd_packets|total_length_of_bwd_packet",
          "ts": "timestamp"},
)  # fmt: skip

ZEEK = Layout(
    name="zeek",
    required=("id.orig_h", "id.resp_h", "proto"),
    label="label",
    drop=("ts", "uid", "id.orig_h", "id.orig_p", "id.resp_h", "tunnel_parents", "detailed-label",
          "local_orig", "local_resp", "orig_l2_addr", "resp_l2_addr", "@stream", "@system", "@proc"),
    meta={"ts": "ts", "src_ip": "id.orig_h", "dst_ip": "id.resp_h", "src_port": "id.orig_p",
          "dst_port": "id.resp_p", "protocol": "proto", "application": "service", "duration": "duration",
          "bytes_out": "orig_bytes", "bytes_in": "resp_bytes", "packets_out": "orig_pkts",
          "packets_in": "resp_pkts"},
    categorical=("proto", "service", "conn_state", "history"),
)  # fmt: skip

PCAP = Layout(
    name="pcap",
    drop=("id", "expiration_id", "src_ip", "src_mac", "src_oui", "dst_ip", "dst_mac", "dst_oui", "src_port",
          "vlan_id", "tunnel_id", "bidirectional_first_seen_ms", "bidirectional_last_seen_ms",
          "src2dst_first_seen_ms", "src2dst_last_seen_ms", "dst2src_first_seen_ms", "dst2src_last_seen_ms",
          "requested_server_name", "client_fingerprint", "server_fingerprint", "user_agent", "content_type",
          "application_category_name", "application_is_guessed", "application_confidence"),
    meta={"src_ip": "src_ip", "dst_ip": "dst_ip", "src_port": "src_port", "dst_port": "dst_port",
          "protocol": "protocol", "application": "application_name", "duration": "bidirectional_duration_ms",
          "bytes_out": "src2dst_bytes", "bytes_in": "dst2src_bytes", "packets_out": "src2dst_packets",
          "packets_in": "dst2src_packets", "ts": "bidirectional_first_seen_ms"},
    categorical=("application_name",),
)  # fmt: skip

GENERIC = Layout(name="csv")

LAYOUTS: dict[str, Layout] = {
    lay.name: lay for lay in (NSL_KDD, UNSW_NB15, CICFLOWMETER, ZEEK, PCAP, GENERIC)
}

# Columns a generic CSV never uses as features: addresses, ids and clocks identify, they do not describe.
IDENTIFIER_HINTS = ("ip", "addr", "mac", "timestamp", "flow_id", "uid", "time", "date")
