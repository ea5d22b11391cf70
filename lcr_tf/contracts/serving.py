"""The serving contract: names of the SavedModel's signatures, of their inputs and outputs, and of the
per-request options, shared by the export, the clients, ``lcr_tf.predict`` and the evaluation.

Plain strings and numbers only: this module imports nothing of the project and no TensorFlow, so a client
that only builds requests can use it without either.

One spelling per concept, with its unit in the name where it has one, whether the value is a batch of
people (a signature's output: first dimension B images, then D people), one person (a JSON record of
``lcr_tf.predict``) or the people of one image (the predictions file of the evaluation):

==========================  ===========================================================================
``score``                   PPI score of a person (sum of its mode's rescored class probabilities)
``box_xyxy_px``             the person's pose box, ``x0, y0, x1, y1`` pixels of the original image
``pose2d_px``               (J, 2) joints, pixels of the original image (x right, y down, origin top-left)
``pose3d_body_centred_m``   (J, 3) metres, camera axes (x right, y down, z away), origin at the body
                            centre (mean of hips and shoulders)
``pose3d_camera_m``         (J, 3) metres in the camera frame (placed by the 3D placement)
``translation_m``           (3,) metres, the body centre in the camera frame
``num_detections``          people found in an image (rows past it are zeros)
==========================  ===========================================================================
"""

# --------------------------------------------------------------------------------------------------
# Signatures
# --------------------------------------------------------------------------------------------------

#: Encoded images, PPI settings stored in the model, default camera.
SERVING_DEFAULT = "serving_default"
#: Encoded images with one value per image of every :data:`OPTION_NAMES` and :data:`INTRINSICS`.
DETECT_WITH_OPTIONS = "detect_with_options"
#: Decoded float32 frames (B, H, W, 3), one size per batch.
DETECT_FLOAT = "detect_float"
#: Encoded images -> proposals and candidates before PPI (:data:`PROPOSAL_KEYS`).
RAW_PROPOSALS = "raw_proposals"
SIGNATURES = (SERVING_DEFAULT, DETECT_WITH_OPTIONS, DETECT_FLOAT, RAW_PROPOSALS)
#: The signatures whose outputs are :data:`DETECTION_KEYS`.
DETECTION_SIGNATURES = (SERVING_DEFAULT, DETECT_WITH_OPTIONS, DETECT_FLOAT)

# --------------------------------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------------------------------

#: (B,) tf.string encoded images (JPEG or PNG, :data:`ENCODED_FORMATS`), or (B, H, W, 3) float32 for
#: :data:`DETECT_FLOAT`.
IMAGES = "images"
#: (B, 4) float32 ``fx, fy, cx, cy`` pixels of the original image; a row with ``fx <= 0`` takes the default
#: camera.
INTRINSICS = "intrinsics"

# --------------------------------------------------------------------------------------------------
# Limits of the encoded-image signatures (:data:`ENCODED_SIGNATURES`)
# --------------------------------------------------------------------------------------------------
# A small encoded file can declare an enormous image (a 441 KB PNG of 12000 x 12000 decodes to 432 MB of
# RGB and took 4.8 GB and 10 s to serve), so the signatures read each image's size from its header and
# refuse, before decoding anything, an image or a request over these limits. They are chosen at export
# (``python -m lcr_tf.export --max_image_side ...``); these are the defaults, the one place of them.

#: The encodings the encoded-image signatures accept: their headers state the image's size, read without
#: decoding (JPEG's frame header, PNG's IHDR chunk). Anything else fails with INVALID_ARGUMENT.
ENCODED_FORMATS = ("jpeg", "png")
#: The signatures that take encoded images, and check them against the limits.
ENCODED_SIGNATURES = (SERVING_DEFAULT, DETECT_WITH_OPTIONS, RAW_PROPOSALS)
#: Pixels per side (width and height each), at most.
MAX_IMAGE_SIDE = 8192
#: Pixels of one image (width x height), at most: 40 megapixels (a 7300 x 5475 photograph).
MAX_IMAGE_PIXELS = 40_000_000
#: Images per call, at most.
MAX_IMAGES_PER_REQUEST = 64
# Names of the limits: the flags of python -m lcr_tf.export, the SavedModel's int64 variables that hold
# them, and the keys of export_info's "input_limits".
MAX_IMAGE_SIDE_NAME = "max_image_side"
MAX_IMAGE_PIXELS_NAME = "max_image_pixels"
MAX_IMAGES_PER_REQUEST_NAME = "max_images_per_request"
#: Limit name -> default value.
DEFAULT_LIMITS = {MAX_IMAGE_SIDE_NAME: MAX_IMAGE_SIDE, MAX_IMAGE_PIXELS_NAME: MAX_IMAGE_PIXELS,
                  MAX_IMAGES_PER_REQUEST_NAME: MAX_IMAGES_PER_REQUEST}
LIMIT_NAMES = tuple(DEFAULT_LIMITS)

# PPI settings that may change per request: inputs of DETECT_WITH_OPTIONS, (B,) each, float32 but RESCORE
# (bool). The other settings (mode, grouping boxes, max candidates, max detections) fix shapes or code
# paths and are chosen at export.
SCORE_THRESHOLD = "score_threshold"
IOU_THRESHOLD = "iou_threshold"
POSE3D_THRESHOLD_M = "pose3d_threshold_m"
MIN_MODE_SCORE = "min_mode_score"
MIN_PERSON_SCORE = "min_person_score"
SIGMA_B_PX = "sigma_b_px"
RESCORE = "rescore"
OPTION_NAMES = (SCORE_THRESHOLD, IOU_THRESHOLD, POSE3D_THRESHOLD_M, MIN_MODE_SCORE, MIN_PERSON_SCORE,
                SIGMA_B_PX, RESCORE)
#: The options that are booleans (the others are float32).
BOOL_OPTIONS = (RESCORE,)
# Their defaults are the fields of lcr_tf.postprocess.params.PPIParams.
#: Prefix of the SavedModel variables that hold the stored option values (``default_score_threshold``, ...).
DEFAULT_VARIABLE_PREFIX = "default_"

# --------------------------------------------------------------------------------------------------
# Outputs of the detection signatures, padded to D people per image and sorted by score
# --------------------------------------------------------------------------------------------------

NUM_DETECTIONS = "num_detections"        # (B,) int32
SCORE = "score"                          # (B, D)
BOX = "box_xyxy_px"                      # (B, D, 4)
POSE2D = "pose2d_px"                     # (B, D, J, 2)
POSE3D = "pose3d_body_centred_m"         # (B, D, J, 3)
POSE3D_CAMERA = "pose3d_camera_m"        # (B, D, J, 3)
TRANSLATION = "translation_m"            # (B, D, 3)
DETECTION_KEYS = (NUM_DETECTIONS, SCORE, BOX, POSE2D, POSE3D, POSE3D_CAMERA, TRANSLATION)
#: The per-person keys (everything but the count), as a JSON record of one person holds them.
PERSON_KEYS = DETECTION_KEYS[1:]

# --------------------------------------------------------------------------------------------------
# Outputs of RAW_PROPOSALS (original pixels; R proposals, M candidates per image)
# --------------------------------------------------------------------------------------------------

PROPOSAL_BOXES = "proposal_boxes"        # (B, R, 4) xyxy px
PROPOSAL_VALID = "proposal_valid"        # (B, R) bool
CLASS_PROBS = "class_probs"              # (B, R, 2K + 1), background first
IMAGE_SIZE = "image_size"                # (B, 2) int32 (H, W)
CANDIDATE_PREFIX = "candidate_"
# Candidate fields (each output is CANDIDATE_PREFIX + field): the (RoI, class) pairs before PPI.
CANDIDATE_ROI_INDEX = "roi_index"        # (B, M) int32
CANDIDATE_CLASSES = "classes"            # (B, M) int32 in 1..2K
CANDIDATE_VALID = "valid"                # (B, M) bool, False for padding
CANDIDATE_ROI_BOXES = "roi_boxes"        # (B, M, 4) xyxy px, the box of the RoI
CANDIDATE_FIELDS = (CANDIDATE_ROI_INDEX, CANDIDATE_CLASSES, SCORE, CANDIDATE_VALID, CANDIDATE_ROI_BOXES,
                    POSE2D, POSE3D)


def candidate_key(field: str) -> str:
    """The RAW_PROPOSALS output of a candidate field: ``candidate_<field>``."""
    return CANDIDATE_PREFIX + field


PROPOSAL_KEYS = (PROPOSAL_BOXES, PROPOSAL_VALID, CLASS_PROBS, IMAGE_SIZE) + tuple(
    candidate_key(f) for f in CANDIDATE_FIELDS)
