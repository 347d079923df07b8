"""`keras-ar serve`: flags mirror tensorflow_model_server's, so scripts switch unchanged.

    keras-ar serve --port=8500 --rest_api_port=8501 --model_name=wavenet \
        --model_base_path=/models/wavenet
    keras-ar serve --port=8500 --model_config_file=models.config \
        --model_config_file_poll_wait_seconds=60

Prints one line `READY grpc=HOST:PORT rest=HOST:PORT` on stdout once the initial versions are
loaded and the ports are open (tests and scripts wait for it).
"""

import logging
import signal
import sys

from serving import limits, load_retry
from serving.rest_connections import DEFAULT_MAX_CONNECTIONS, DEFAULT_TIMEOUT_S


def add_arguments(parser):
    parser.add_argument("--port", type=int, default=8500, help="gRPC port (0: any free port)")
    parser.add_argument("--rest_api_port", type=int, default=0,
                        help="REST port; 0 disables REST (as in tensorflow_model_server)")
    parser.add_argument("--model_name", default="default", help="name of the single model")
    parser.add_argument("--model_base_path", default="",
                        help="BASE with integer version subdirectories (single model)")
    parser.add_argument("--model_config_file", default="",
                        help="text-format ModelServerConfig (several models, version policies "
                             "and labels); overrides --model_name/--model_base_path")
    parser.add_argument("--file_system_poll_wait_seconds", type=float, default=1.0,
                        help="seconds between polls for new versions; 0 polls once at start")
    parser.add_argument("--load_retry_max_wait_seconds", type=float,
                        default=load_retry.DEFAULT_MAX_WAIT_S,
                        help="a version that fails to load keeps the served versions and is "
                             "retried, waiting the poll interval doubled per failure, at most "
                             "this long (at the next poll when its files change)")
    parser.add_argument("--model_config_file_poll_wait_seconds", type=float, default=0.0,
                        help="seconds between re-reads of --model_config_file (models added "
                             "or removed, version policies and labels changed are applied "
                             "without a restart); 0 reads it once at start")
    parser.add_argument("--tensorflow_intra_op_parallelism", type=int, default=0,
                        help="threads of TensorFlow's intra-op pool (0: TensorFlow chooses)")
    parser.add_argument("--tensorflow_inter_op_parallelism", type=int, default=0,
                        help="threads of TensorFlow's inter-op pool (0: TensorFlow chooses)")
    parser.add_argument("--rest_api_num_threads", type=int, default=16)
    parser.add_argument("--grpc_max_threads", type=int, default=16)
    parser.add_argument("--max_request_bytes", type=int, default=limits.DEFAULT_MAX_REQUEST_BYTES,
                        help="largest accepted request body (REST) / message (gRPC)")
    parser.add_argument("--max_batch_size", type=int, default=limits.DEFAULT_MAX_BATCH_SIZE,
                        help="most rows (leading dimension) of any input or output tensor")
    parser.add_argument("--max_tensor_elements", type=int,
                        default=limits.DEFAULT_MAX_TENSOR_ELEMENTS,
                        help="most elements of any input tensor or output a request produces "
                             "(checked before anything is allocated)")
    parser.add_argument("--max_sequence_length", type=int,
                        default=limits.DEFAULT_MAX_SEQUENCE_LENGTH,
                        help="most positions on a time axis (x, prompt, noise); a model with "
                             "its own length (max_length, image H*W) is held to that")
    parser.add_argument("--max_num_steps", type=int, default=limits.DEFAULT_MAX_NUM_STEPS,
                        help="most steps one generate_seeded request asks for")
    parser.add_argument("--rest_api_timeout_in_ms", type=int,
                        default=int(DEFAULT_TIMEOUT_S * 1000),
                        help="REST: longest wait for one socket read; idle connections are "
                             "closed after it")
    parser.add_argument("--rest_api_max_connections", type=int,
                        default=DEFAULT_MAX_CONNECTIONS,
                        help="REST: most open connections (more are answered 503)")
    parser.add_argument("--enable_model_warmup", type=_bool, default=True,
                        help="replay assets.extra/tf_serving_warmup_requests on load")
    parser.add_argument("--prefer_tflite_model", type=_bool, default=False,
                        help="run <version>/model.tflite where a version has one, instead of "
                             "saved_model.pb (as tensorflow_model_server's flag)")
    parser.add_argument("--num_tflite_interpreters_per_pool", type=int, default=1,
                        help="TFLite interpreters per servable (requests run concurrently "
                             "on this many)")
    parser.add_argument("--enable_batching", type=_bool, nargs="?", const=True, default=False,
                        help="merge concurrent Predicts of the same model version and "
                             "signature whose shapes agree into one run (docs/serving.md)")
    parser.add_argument("--batching_parameters_file", default="",
                        help="text-format BatchingParameters (max_batch_size, "
                             "batch_timeout_micros, max_enqueued_batches, num_batch_threads, "
                             "allowed_batch_sizes), read with --enable_batching")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to bind (loopback by default; 0.0.0.0 exposes the server)")


def _bool(text):
    if text.lower() in ("1", "true", "yes"):
        return True
    if text.lower() in ("0", "false", "no"):
        return False
    raise ValueError(f"expected true/false, got {text!r}")


def build_configs(args):
    from serving.model_manager import ModelConfig, read_config_file

    if args.model_config_file:
        return read_config_file(args.model_config_file)
    if not args.model_base_path:
        raise SystemExit("keras-ar serve: give --model_base_path (with --model_name) or "
                         "--model_config_file.")
    return [ModelConfig(args.model_name, args.model_base_path)]


def build_batcher(args):
    """The BatchScheduler all models share with --enable_batching (None without it), with
    --batching_parameters_file's values or the defaults; a bad file stops the start with
    its field, value and fix."""
    from serving.batching_parameters import BatchingParameters

    log = logging.getLogger("keras_ar.serving")
    if not args.enable_batching:
        if args.batching_parameters_file:
            log.warning("--batching_parameters_file=%s has no effect without "
                        "--enable_batching (as in tensorflow_model_server).",
                        args.batching_parameters_file)
        return None
    parameters = BatchingParameters()
    if args.batching_parameters_file:
        try:
            parameters = BatchingParameters.from_file(args.batching_parameters_file)
        except ValueError as error:
            raise SystemExit(f"keras-ar serve: {error}") from None
    from serving.batch_scheduler import BatchScheduler

    log.info("Batching on: %s", parameters.as_dict())
    return BatchScheduler(parameters)


def run(args):
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    batcher = build_batcher(args)  # a bad batching file fails before TensorFlow loads
    from serving.model_manager import ModelManager
    from serving.server import ModelServer

    server_limits = limits.ServerLimits(args.max_batch_size, args.max_tensor_elements,
                                        args.max_sequence_length, args.max_num_steps)

    if args.model_config_file_poll_wait_seconds > 0 and not args.model_config_file:
        logging.getLogger("keras_ar.serving").warning(
            "--model_config_file_poll_wait_seconds=%s has no effect without "
            "--model_config_file.", args.model_config_file_poll_wait_seconds)
    manager = ModelManager(build_configs(args), enable_warmup=args.enable_model_warmup,
                           session_threads=(args.tensorflow_intra_op_parallelism,
                                            args.tensorflow_inter_op_parallelism),
                           prefer_tflite_model=args.prefer_tflite_model,
                           tflite_interpreters=args.num_tflite_interpreters_per_pool,
                           limits=server_limits,
                           load_retry_max_wait_s=args.load_retry_max_wait_seconds,
                           batcher=batcher)
    server = ModelServer(manager, grpc_port=args.port, rest_port=args.rest_api_port,
                         host=args.host, poll_wait_seconds=args.file_system_poll_wait_seconds,
                         grpc_threads=args.grpc_max_threads,
                         rest_threads=args.rest_api_num_threads,
                         max_request_bytes=args.max_request_bytes,
                         config_file=args.model_config_file or None,
                         config_poll_wait_seconds=args.model_config_file_poll_wait_seconds,
                         rest_timeout_s=args.rest_api_timeout_in_ms / 1000.0,
                         rest_max_connections=args.rest_api_max_connections)
    server.start()
    rest = f"{args.host}:{server.rest_port}" if server.rest_port else "off"
    print(f"READY grpc={args.host}:{server.grpc_port} rest={rest}", flush=True)

    def _stop(signum, frame):
        server._stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    server.wait()
    server.stop()
    return 0
