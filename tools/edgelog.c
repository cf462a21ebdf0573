/* placeholder */ typedef int eng_placeholder_edgelog;
