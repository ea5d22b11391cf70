"""Keys of the dicts that flow from the TFRecord decoder through augmentation and batching to the model.

The on-disk record keys are :mod:`lcr_tf.contracts.features`; these are the in-memory ones. The element
of one image (from :func:`lcr_tf.data.decoder.decode`) and the batch (from
:func:`lcr_tf.data.pipeline.make_dataset`) share them; a batch adds a leading B axis and pads the person
axis to ``max_people`` (``PERSON_MASK``) and the ignore axis to ``max_ignore`` (``IGNORE_MASK``). Shapes
and meanings are tabled in :mod:`lcr_tf.data.decoder` (element) and :mod:`lcr_tf.data.pipeline` (batch).
"""

IMAGE = "image"
IMAGE_ID = "image_id"
IMAGE_SOURCE = "image_source"
SOURCE_FILE = "source_file"
ORIGINAL_SIZE = "original_size"
INTRINSICS = "intrinsics"
TRANSFORM = "transform"
NUM_PEOPLE = "num_people"
BOXES = "boxes"
POSE2D = "pose2d"
ANNOTATED = "annotated"
VISIBLE = "visible"
COMPLETED = "completed"
POSE3D = "pose3d"
POSE3D_SOURCE = "pose3d_source"
PSEUDO_GT_DISTANCE = "pseudo_gt_distance"
ANCHOR_CLASS = "anchor_class"
IGNORE_BOXES = "ignore_boxes"

#: The per-person keys of an element: their first dimension is the person axis.
PERSON_KEYS = (BOXES, POSE2D, ANNOTATED, VISIBLE, COMPLETED, POSE3D, POSE3D_SOURCE, PSEUDO_GT_DISTANCE,
               ANCHOR_CLASS)
#: The per-joint boolean masks (permuted together with the joints by a flip).
JOINT_MASK_KEYS = (ANNOTATED, VISIBLE, COMPLETED)

# Added by the pipeline's batching.
PERSON_MASK = "person_mask"
IGNORE_MASK = "ignore_mask"
NUM_PEOPLE_OVER_MAX = "num_people_over_max"
# Added by the crop of augmentation: people dropped because no joint was left in the image.
NUM_PEOPLE_OUTSIDE = "num_people_outside"
