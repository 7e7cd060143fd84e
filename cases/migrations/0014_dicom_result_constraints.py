# The result objects' constraints, in their own migration: on PostgreSQL a table cannot be altered in the
# transaction that updated its rows (0013 numbers the existing study reports).

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("cases", "0013_dicom_result_states"),
    ]

    operations = [
        migrations.AddConstraint(
            model_name='dicomresultobject',
            constraint=models.UniqueConstraint(condition=models.Q(('image__isnull', False)), fields=('image', 'kind', 'model_version'), name='one_result_object_per_image_kind_and_model'),
        ),
        migrations.AddConstraint(
            model_name='dicomresultobject',
            constraint=models.UniqueConstraint(condition=models.Q(('image__isnull', True)), fields=('study', 'kind', 'version'), name='one_study_result_object_per_kind_and_version'),
        ),
        migrations.AddConstraint(
            model_name='dicomresultobject',
            constraint=models.CheckConstraint(condition=models.Q(('status', 'failed'), models.Q(('sop_instance_uid__isnull', False), models.Q(('file', ''), _negated=True)), _connector='OR'), name='built_result_object_has_its_file'),
        ),
    ]
